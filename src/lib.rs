//! picojoule: event-driven simulation, action ledgers and hardware pricing.
pub mod numerics;
