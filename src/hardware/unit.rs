//! The price of one action and the level a tensor class is placed in: what both the
//! per-action pricing (`price`) and the traced weight hierarchy (`hierarchy`) build on.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CostModel, Energy, MemoryLevel};
use crate::ledger::TensorClass;

/// Live bytes per tensor class: what placement chooses a level by (`Ledger::footprint_at`).
pub type Footprint = BTreeMap<TensorClass, u64>;

/// The energy of one action (per count; per byte for memory), with how it was derived.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Price {
    pub nominal: f64,
    pub min: f64,
    pub max: f64,
    /// How the price was obtained, e.g. `mul.fp32 + add.fp32` or `memory sram-32k`.
    pub how: String,
}

impl Price {
    pub(super) fn of(e: Energy, how: String) -> Price {
        Price {
            nominal: e.nominal(),
            min: e.min(),
            max: e.max(),
            how,
        }
    }
    pub(super) fn scaled(&self, k: f64) -> Price {
        Price {
            nominal: self.nominal * k,
            min: self.min * k,
            max: self.max * k,
            how: self.how.clone(),
        }
    }
    pub(super) fn plus(&self, o: &Price) -> Price {
        Price {
            nominal: self.nominal + o.nominal,
            min: self.min + o.min,
            max: self.max + o.max,
            how: format!("{} + {}", self.how, o.how),
        }
    }
}

/// The level a tensor class lives in: where the cost model pins it, or the smallest level that
/// holds its footprint.
pub fn place<'a>(cm: &'a CostModel, fp: &Footprint, class: TensorClass) -> Option<&'a MemoryLevel> {
    if let Some(pin) = cm.pins.iter().find(|p| p.class == class) {
        return cm.memories.iter().find(|m| m.name == pin.level);
    }
    let need = fp.get(&class).copied().unwrap_or(0);
    cm.memories
        .iter()
        .filter(|m| m.may_hold(class))
        .filter(|m| m.total_capacity().is_none_or(|c| c >= need))
        .min_by_key(|m| m.total_capacity().unwrap_or(u64::MAX))
}
