//! Simulation and counterfactual evaluation, apart from the live decision
//! path: the customer-and-observer simulator ([`world`]), the comparison of
//! policies on it ([`compare`]), the logged-decision format ([`logs`]),
//! off-policy estimators ([`ope`]), and the evaluation of a candidate policy
//! from logged decisions with them ([`evaluate`]).

pub mod compare;
pub mod evaluate;
pub mod logs;
pub mod ope;
pub mod world;
