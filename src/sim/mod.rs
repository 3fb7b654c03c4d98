//! Simulation and counterfactual evaluation, apart from the live decision
//! path: the customer-and-observer simulator (to come), and off-policy
//! evaluation ([`ope`]) of candidate policies from logged decisions.

pub mod ope;
