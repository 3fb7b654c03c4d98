//! fairtreat: recommends how to answer each customer interaction, and keeps
//! the treatment fair for everyone watching.
//!
//! See `ARCHITECTURE.md` for the map of modules.

pub mod cli;
pub mod clock;
pub mod domain;
pub mod http;
pub mod model;
pub mod service;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod whatif;
