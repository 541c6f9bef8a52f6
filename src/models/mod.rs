//! Model families, one file each. A model description is a RON file naming the family.

pub mod pvt;
pub mod sequential;
pub mod spikegpt;
pub mod transformer;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{self, Error, Result};

/// A model description file (`models/*.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelDesc {
    SpikeGpt(spikegpt::Config),
    Transformer(transformer::Config),
    Sequential(sequential::Config),
    Pvt(pvt::Config),
}

impl ModelDesc {
    pub fn load(path: &Path) -> Result<ModelDesc> {
        let text = error::read_text(path)?;
        let desc: ModelDesc = error::parse_ron(path, &text)?;
        desc.validate()
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        Ok(desc)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ModelDesc::SpikeGpt(c) => c.validate(),
            ModelDesc::Transformer(c) => c.validate(),
            ModelDesc::Sequential(c) => c.validate(),
            ModelDesc::Pvt(c) => c.validate(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ModelDesc::SpikeGpt(c) => &c.name,
            ModelDesc::Transformer(c) => &c.name,
            ModelDesc::Sequential(c) => &c.name,
            ModelDesc::Pvt(c) => &c.name,
        }
    }
}
