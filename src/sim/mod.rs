//! Simulation and counterfactual evaluation, apart from the live decision
//! path: the customer-and-observer simulator ([`world`]), the comparison of
//! policies on it ([`compare`]), the logged-decision format ([`logs`]), and
//! off-policy evaluation ([`ope`]) of candidate policies from logged decisions.

pub mod compare;
pub mod logs;
pub mod ope;
pub mod world;
