//! Integration tests, in one binary: HTTP end to end on port 0, and checks
//! against reference outputs of other libraries.

mod bad_input;
mod binary;
mod consistency;
mod dashboard;
mod decisions;
mod fairlearn_reference;
mod helpers;
mod obp_reference;
mod openapi;
mod outcome_model;
mod parity;
mod policy_api;
mod properties;
mod redis_harness;
mod redis_store;
mod sentiment_model;
mod simulator;
mod store_contract;
mod vader_reference;
