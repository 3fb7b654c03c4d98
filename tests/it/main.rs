//! Integration tests, in one binary: HTTP end to end on port 0, and checks
//! against reference outputs of other libraries.

mod auth_matrix;
mod bad_input;
mod batch;
mod binary;
mod consistency;
mod dashboard;
mod decisions;
mod exploration;
mod fairlearn_reference;
mod feedback;
mod helpers;
mod obp_reference;
mod ope_coverage;
mod openapi;
mod outcome_model;
mod overload;
mod parity;
mod policy_api;
mod properties;
mod redis_harness;
mod redis_store;
mod sentiment_model;
mod shadow;
mod simulator;
mod store_contract;
mod vader_reference;
