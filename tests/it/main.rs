//! Integration tests, in one binary: HTTP end to end on port 0, and checks
//! against reference outputs of other libraries.

mod bad_input;
mod consistency;
mod decisions;
mod helpers;
mod openapi;
mod vader_reference;
