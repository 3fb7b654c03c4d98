//! Integration tests, in one binary: HTTP end to end on port 0, and checks
//! against reference outputs of other libraries.

mod helpers;
mod vader_reference;
