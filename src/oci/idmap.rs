//! Id mappings of a user namespace, read in the format of
//! `/proc/PID/uid_map`, used to record files written inside the namespace
//! with the ids they have there rather than the host's sub-ids.

use std::path::Path;

use super::{Error, IoContext, Result};

/// One `uid_map` or `gid_map`: lines of `INSIDE OUTSIDE COUNT`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMap {
    ranges: Vec<Range>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    inside: u32,
    outside: u32,
    count: u32,
}

impl IdMap {
    /// Parse the text of a `uid_map`/`gid_map` file.
    pub fn parse(text: &str) -> Result<IdMap> {
        let mut ranges = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<u32> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::Invalid {
                    what: format!("id map line {}: {line:?}", n + 1),
                    message: format!("{e}; expected INSIDE OUTSIDE COUNT"),
                })?;
            let [inside, outside, count] = fields[..] else {
                return Err(Error::Invalid {
                    what: format!("id map line {}: {line:?}", n + 1),
                    message: "expected three numbers: INSIDE OUTSIDE COUNT".into(),
                });
            };
            ranges.push(Range {
                inside,
                outside,
                count,
            });
        }
        Ok(IdMap { ranges })
    }

    /// Read a map from a file such as `/proc/1234/uid_map`.
    pub fn from_file(path: &Path) -> Result<IdMap> {
        let text =
            std::fs::read_to_string(path).io_ctx(|| format!("reading {}", path.display()))?;
        IdMap::parse(&text)
    }

    /// The id inside the namespace of host id `host`, if the map covers it.
    pub fn to_inside(&self, host: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            let off = host.checked_sub(r.outside)?;
            (off < r.count).then(|| r.inside + off)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_ids_back_and_refuses_the_rest() {
        let map = IdMap::parse("         0     300000      65536\n 65536 1000 1\n").unwrap();
        assert_eq!(map.to_inside(300000), Some(0));
        assert_eq!(map.to_inside(300033), Some(33));
        assert_eq!(map.to_inside(1000), Some(65536));
        assert_eq!(map.to_inside(0), None);
        assert_eq!(map.to_inside(365536), None);
        assert!(IdMap::parse("0 1").is_err());
    }
}
