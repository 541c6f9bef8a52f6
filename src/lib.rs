//! picojoule: event-driven simulation of efficient neural networks, action ledgers, and hardware
//! pricing.
//!
//! The data path: scenario -> models -> engine (counts every action where it happens) -> ledger
//! -> hardware pricing -> report.

pub mod attention_cost;
pub mod baselines;
pub mod cli;
pub mod convention;
pub mod engine;
pub mod error;
pub mod exec;
pub mod hardware;
pub mod import;
pub mod input;
pub mod ledger;
pub mod models;
pub mod numerics;
pub mod report;
pub mod reproduce;
pub mod resources;
pub mod scenario;
pub mod sweep;
pub mod weights;

pub use error::{Error, Result};
