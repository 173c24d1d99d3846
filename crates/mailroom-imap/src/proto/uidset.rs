//! A set of UIDs kept as sorted, disjoint, non-adjacent ranges (`1:500,502:9000`).

use std::fmt;

/// A set of UIDs as inclusive ranges, sorted and merged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

impl fmt::Debug for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UidSet({self})")
    }
}

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        UidSet::default()
    }

    /// A set of the given UIDs, in any order.
    pub fn from_uids(uids: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = uids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        let mut set = UidSet::new();
        for uid in v {
            set.push_back(uid);
        }
        set
    }

    /// Adds a UID; cheap when UIDs arrive in ascending order.
    pub fn insert(&mut self, uid: u32) {
        if self.ranges.last().is_none_or(|&(_, hi)| uid > hi) {
            self.push_back(uid);
        } else if !self.contains(uid) {
            self.insert_range(uid, uid);
        }
    }

    fn push_back(&mut self, uid: u32) {
        match self.ranges.last_mut() {
            Some((_, hi)) if *hi == uid || hi.checked_add(1) == Some(uid) => *hi = uid,
            _ => self.ranges.push((uid, uid)),
        }
    }

    fn insert_range(&mut self, lo: u32, hi: u32) {
        let i = self
            .ranges
            .partition_point(|&(_, h)| h.saturating_add(1) < lo);
        let mut j = i;
        let (mut new_lo, mut new_hi) = (lo, hi);
        while j < self.ranges.len() && self.ranges[j].0 <= hi.saturating_add(1) {
            new_lo = new_lo.min(self.ranges[j].0);
            new_hi = new_hi.max(self.ranges[j].1);
            j += 1;
        }
        self.ranges.splice(i..j, [(new_lo, new_hi)]);
    }

    /// True when `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < uid);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= uid)
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of UIDs in the set.
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|&(lo, hi)| u64::from(hi - lo) + 1)
            .sum()
    }

    /// The UIDs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// The UIDs of `self` that are not in `other`.
    pub fn difference(&self, other: &UidSet) -> UidSet {
        let mut out = UidSet::new();
        let mut j = 0;
        for &(lo, hi) in &self.ranges {
            while j < other.ranges.len() && other.ranges[j].1 < lo {
                j += 1;
            }
            // u64 so that `ohi + 1` cannot overflow at u32::MAX.
            let (mut start, hi) = (u64::from(lo), u64::from(hi));
            let mut k = j;
            while start <= hi {
                match other.ranges.get(k) {
                    Some(&(olo, ohi)) if u64::from(olo) <= hi => {
                        if u64::from(olo) > start {
                            out.ranges.push((start as u32, olo - 1));
                        }
                        start = start.max(u64::from(ohi) + 1);
                        k += 1;
                    }
                    _ => {
                        out.ranges.push((start as u32, hi as u32));
                        break;
                    }
                }
            }
        }
        out
    }

    /// Removes every UID of `other` from `self`.
    pub fn remove_all(&mut self, other: &UidSet) {
        *self = self.difference(other);
    }

    /// Parses `1:5,7,9:12` (the IMAP sequence-set syntax without `*`).
    pub fn parse(s: &str) -> Option<UidSet> {
        let mut set = UidSet::new();
        if s.is_empty() {
            return Some(set);
        }
        for part in s.split(',') {
            let (lo, hi) = match part.split_once(':') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n = part.parse().ok()?;
                    (n, n)
                }
            };
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if lo == 0 {
                return None;
            }
            set.insert_range(lo, hi);
        }
        Some(set)
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}:{hi}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> UidSet {
        UidSet::parse(s).unwrap()
    }

    #[test]
    fn builds_compact_ranges() {
        let s = UidSet::from_uids([5, 1, 2, 3, 9, 10, 7]);
        assert_eq!(s.to_string(), "1:3,5,7,9:10");
        assert_eq!(s.len(), 7);
        let mut s = set("1:3,7");
        s.insert(5);
        s.insert(4);
        s.insert(6);
        assert_eq!(s.to_string(), "1:7");
        s.insert(u32::MAX);
        assert_eq!(s.to_string(), format!("1:7,{}", u32::MAX));
        assert!(s.contains(4) && !s.contains(8) && s.contains(u32::MAX));
        assert_eq!(set("9:7,1").to_string(), "1,7:9");
        assert!(UidSet::parse("0:3").is_none());
        assert!(UidSet::parse("a").is_none());
        assert!(set("").is_empty());
    }

    #[test]
    fn difference_of_ranges() {
        let check = |a: &str, b: &str, want: &str| {
            assert_eq!(set(a).difference(&set(b)).to_string(), want, "{a} - {b}");
        };
        check("1:10", "", "1:10");
        check("1:10", "1:10", "");
        check("1:10", "3:4,8", "1:2,5:7,9:10");
        check("1:10,20:30", "5:25", "1:4,26:30");
        check("1:3", "5:9", "1:3");
        check("5:9", "1:3,11", "5:9");
        check("1:500,502:9000", "1:9000", "");
        check("1,3,5", "2:4", "1,5");
    }
}
