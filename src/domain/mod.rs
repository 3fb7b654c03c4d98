//! The pure core: types, validation, scoring, arbitration and fairness
//! constraints. Nothing here does I/O: no HTTP, no store, no files, no clock.
//! Everything the core needs (the time, the window statistics, random draws)
//! is passed in, so every rule can be tested at its edges.

pub mod decide;
pub mod decision;
pub mod fairness;
pub mod feedback;
pub mod interaction;
pub mod outcome;
pub mod policy;
pub mod report;
pub mod scoring;
pub mod sentiment;
pub mod validation;
pub mod window;
pub mod wire;
