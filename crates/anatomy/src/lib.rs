//! Spine vocabulary for the spine-aware layers (phantom, segment, model, scenario).
//!
//! Label numbering follows the VerSe challenge (Sekuboyina et al., Medical Image Analysis 73
//! (2021) 102166) for vertebrae: 1-7 cervical, 8-19 thoracic (19 = T12), 20-24 = L1-L5,
//! 25 = L6 (transitional), 26 = sacrum (S1), 28 = T13 (extra rib-bearing). spinetwin adds
//! labels for the structures VerSe does not have:
//!
//! | structure | label |
//! |---|---|
//! | intervertebral disc below vertebra with label `v` | `100 + v` (e.g. L4-L5 = 123, L5-S1 = 124 or 125 with an L6) |
//! | spinal canal: the bony vertebral canal (dural sac and epidural fat), continuous between levels | 200 |
//!
//! The imaging and finite-element layers know nothing of this module.

pub mod pedicle;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Label of the disc below the vertebra with label `v`.
pub const DISC_LABEL_OFFSET: u16 = 100;
/// Label of the spinal canal.
pub const CANAL_LABEL: u16 = 200;

/// A vertebral level handled by spinetwin, cranial to caudal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// 10th thoracic vertebra.
    T10,
    /// 11th thoracic vertebra.
    T11,
    /// 12th thoracic vertebra.
    T12,
    /// 1st lumbar vertebra.
    L1,
    /// 2nd lumbar vertebra.
    L2,
    /// 3rd lumbar vertebra.
    L3,
    /// 4th lumbar vertebra.
    L4,
    /// 5th lumbar vertebra.
    L5,
    /// Transitional 6th lumbar vertebra.
    L6,
    /// First sacral vertebra (the sacrum as a whole in label maps).
    S1,
}

impl Level {
    /// All levels, cranial to caudal.
    pub const ALL: [Level; 10] = [
        Level::T10,
        Level::T11,
        Level::T12,
        Level::L1,
        Level::L2,
        Level::L3,
        Level::L4,
        Level::L5,
        Level::L6,
        Level::S1,
    ];

    /// The VerSe label of this vertebra.
    pub fn verse_label(self) -> u16 {
        match self {
            Level::T10 => 17,
            Level::T11 => 18,
            Level::T12 => 19,
            Level::L1 => 20,
            Level::L2 => 21,
            Level::L3 => 22,
            Level::L4 => 23,
            Level::L5 => 24,
            Level::L6 => 25,
            Level::S1 => 26,
        }
    }

    /// The level with a given VerSe label, if spinetwin handles it.
    pub fn from_verse_label(label: u16) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.verse_label() == label)
    }

    /// Label of the disc directly below this vertebra (none below the sacrum).
    pub fn disc_below_label(self) -> Option<u16> {
        (self != Level::S1).then(|| DISC_LABEL_OFFSET + self.verse_label())
    }

    /// The vertebra whose disc carries `label`, if `label` is a disc label.
    pub fn from_disc_label(label: u16) -> Option<Level> {
        label
            .checked_sub(DISC_LABEL_OFFSET)
            .and_then(Level::from_verse_label)
            .filter(|l| *l != Level::S1)
    }

    /// The usual name ("L4").
    pub fn name(self) -> &'static str {
        match self {
            Level::T10 => "T10",
            Level::T11 => "T11",
            Level::T12 => "T12",
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
            Level::L4 => "L4",
            Level::L5 => "L5",
            Level::L6 => "L6",
            Level::S1 => "S1",
        }
    }

    /// True for the lumbar levels L1-L6.
    pub fn is_lumbar(self) -> bool {
        (Level::L1..=Level::L6).contains(&self)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level name or range that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// Not a level spinetwin knows.
    #[error("'{0}' is not a level spinetwin handles (use T10, T11, T12, L1..L6 or S1)")]
    Unknown(String),
    /// A range whose ends are in the wrong order or malformed.
    #[error("'{0}' is not a level range cranial to caudal, such as T12-S1 or L1-L5")]
    BadRange(String),
}

impl FromStr for Level {
    type Err = LevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_uppercase();
        Level::ALL
            .into_iter()
            .find(|l| l.name() == t)
            .ok_or_else(|| LevelError::Unknown(s.trim().to_string()))
    }
}

/// A contiguous run of vertebrae, cranial to caudal, e.g. T12-S1. L6 is included only when
/// the range names it: a normal lumbar spine T12-S1 is T12, L1..L5, S1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRange {
    levels: Vec<Level>,
}

impl LevelRange {
    /// The range from `top` to `bottom` inclusive (`top` cranial); L6 only if an end is L6
    /// or `with_l6` is set.
    pub fn new(top: Level, bottom: Level, with_l6: bool) -> Result<Self, LevelError> {
        if top >= bottom {
            return Err(LevelError::BadRange(format!("{top}-{bottom}")));
        }
        let keep_l6 = with_l6 || top == Level::L6 || bottom == Level::L6;
        let levels = Level::ALL
            .into_iter()
            .filter(|l| (top..=bottom).contains(l) && (*l != Level::L6 || keep_l6))
            .collect();
        Ok(LevelRange { levels })
    }

    /// The vertebrae, cranial to caudal.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Adjacent pairs (motion segments), cranial to caudal.
    pub fn segments(&self) -> impl Iterator<Item = (Level, Level)> + '_ {
        self.levels.windows(2).map(|w| (w[0], w[1]))
    }

    /// True when the range contains `level`.
    pub fn contains(&self, level: Level) -> bool {
        self.levels.contains(&level)
    }
}

impl FromStr for LevelRange {
    type Err = LevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| LevelError::BadRange(s.trim().to_string()))?;
        let (top, bottom): (Level, Level) = (a.parse()?, b.parse()?);
        LevelRange::new(top, bottom, false).map_err(|_| LevelError::BadRange(s.trim().to_string()))
    }
}

impl fmt::Display for LevelRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.levels[0],
            self.levels[self.levels.len() - 1]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verse_labels_and_discs() {
        assert_eq!(Level::T12.verse_label(), 19);
        assert_eq!(Level::L1.verse_label(), 20);
        assert_eq!(Level::L5.verse_label(), 24);
        assert_eq!(Level::L6.verse_label(), 25);
        assert_eq!(Level::S1.verse_label(), 26);
        assert_eq!(Level::L4.disc_below_label(), Some(123));
        assert_eq!(Level::S1.disc_below_label(), None);
        assert_eq!(Level::from_disc_label(123), Some(Level::L4));
        assert_eq!(Level::from_disc_label(126), None);
        assert_eq!(Level::from_disc_label(CANAL_LABEL), None);
        for l in Level::ALL {
            assert_eq!(Level::from_verse_label(l.verse_label()), Some(l));
        }
    }

    #[test]
    fn ranges_parse_and_skip_l6_unless_named() {
        let r: LevelRange = "T12-S1".parse().unwrap();
        let names: Vec<_> = r.levels().iter().map(|l| l.name()).collect();
        assert_eq!(names, ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]);
        assert_eq!(r.segments().count(), 6);
        assert_eq!(r.to_string(), "T12-S1");
        let r6 = LevelRange::new(Level::L1, Level::S1, true).unwrap();
        assert!(r6.contains(Level::L6) && r6.levels().len() == 7);
        assert!("l1-l5".parse::<LevelRange>().is_ok());
        assert!("S1-L1".parse::<LevelRange>().is_err());
        assert!("L7-S1".parse::<LevelRange>().is_err());
        assert!("L1".parse::<LevelRange>().is_err());
    }
}
