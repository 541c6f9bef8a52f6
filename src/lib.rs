//! picojoule: event-driven simulation of efficient neural networks, action ledgers, and hardware
//! pricing.
//!
//! The data path: scenario -> models -> engine (counts every action where it happens) -> ledger
//! -> hardware pricing -> report.

pub mod attention_cost;
pub mod cli;
pub mod convention;
pub mod data;
pub mod engine;
pub mod error;
pub mod hardware;
pub mod import;
pub mod ledger;
pub mod models;
pub mod numerics;
pub mod report;
pub mod reproduce;
pub mod resources;
pub mod run;
pub mod run_sequential;
pub mod scenario;
pub mod sweep;
pub mod weights;

pub use error::{Error, Result};
