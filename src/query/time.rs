//! Calendar arithmetic for queries: the one calendar module, `crate::calendar`, which the
//! recorder's daily rollups use too (so a day row and a day query always agree on where a day
//! starts, DST or not).

pub use crate::calendar::*;
