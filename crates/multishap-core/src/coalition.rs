//! Coalitions as bitsets, and batches of coalitions that convert to dense
//! `[B, d]` 0/1 mask tensors for building masked model inputs on the device.
use candle_core::{DType, Device, Tensor};

const WORD: usize = 64;

fn words_for(d: usize) -> usize {
    d.div_ceil(WORD).max(1)
}

/// One coalition over `d` players, stored as a bitset (player p at bit p).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coalition {
    d: usize,
    bits: Vec<u64>,
}

impl Coalition {
    pub fn empty(d: usize) -> Self {
        Self {
            d,
            bits: vec![0; words_for(d)],
        }
    }

    pub fn full(d: usize) -> Self {
        let mut c = Self::empty(d);
        for p in 0..d {
            c.insert(p);
        }
        c
    }

    /// From a bitmask (d <= 64), player p at bit p.
    pub fn from_mask(d: usize, mask: u64) -> Self {
        let mut c = Self::empty(d);
        c.bits[0] = if d >= 64 {
            mask
        } else {
            mask & ((1u64 << d) - 1)
        };
        c
    }

    pub fn from_members(d: usize, members: impl IntoIterator<Item = usize>) -> Self {
        let mut c = Self::empty(d);
        for p in members {
            c.insert(p);
        }
        c
    }

    pub fn num_players(&self) -> usize {
        self.d
    }

    pub fn words(&self) -> &[u64] {
        &self.bits
    }

    pub fn contains(&self, p: usize) -> bool {
        debug_assert!(p < self.d);
        self.bits[p / WORD] >> (p % WORD) & 1 == 1
    }

    pub fn insert(&mut self, p: usize) {
        debug_assert!(p < self.d);
        self.bits[p / WORD] |= 1 << (p % WORD);
    }

    pub fn remove(&mut self, p: usize) {
        debug_assert!(p < self.d);
        self.bits[p / WORD] &= !(1 << (p % WORD));
    }

    /// A copy with player `p` set to `present`.
    pub fn with(&self, p: usize, present: bool) -> Self {
        let mut c = self.clone();
        if present {
            c.insert(p)
        } else {
            c.remove(p)
        }
        c
    }

    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.d).filter(move |&p| self.contains(p))
    }
}

/// Many coalitions over the same `d` players, packed contiguously.
/// This is what a [`crate::Game`] receives: estimators must ask in batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoalitionBatch {
    d: usize,
    words: usize,
    data: Vec<u64>,
}

impl CoalitionBatch {
    pub fn new(d: usize) -> Self {
        Self {
            d,
            words: words_for(d),
            data: Vec::new(),
        }
    }

    pub fn with_capacity(d: usize, capacity: usize) -> Self {
        let words = words_for(d);
        Self {
            d,
            words,
            data: Vec::with_capacity(words * capacity),
        }
    }

    pub fn num_players(&self) -> usize {
        self.d
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.words
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn push(&mut self, c: &Coalition) {
        assert_eq!(
            c.num_players(),
            self.d,
            "coalition over a different player set"
        );
        self.data.extend_from_slice(c.words());
    }

    /// Append a coalition given by its raw bitset words (as from [`Self::words`]).
    pub fn push_words(&mut self, words: &[u64]) {
        assert_eq!(
            words.len(),
            self.words,
            "coalition over a different player set"
        );
        self.data.extend_from_slice(words);
    }

    /// Append the coalition with bitmask `mask` (d <= 64).
    pub fn push_mask(&mut self, mask: u64) {
        assert!(self.d <= 64, "push_mask needs d <= 64");
        self.data.push(mask);
    }

    /// The bitset words of coalition `i`.
    pub fn words(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..(i + 1) * self.words]
    }

    pub fn get(&self, i: usize) -> Coalition {
        Coalition {
            d: self.d,
            bits: self.words(i).to_vec(),
        }
    }

    pub fn contains(&self, i: usize, p: usize) -> bool {
        self.words(i)[p / WORD] >> (p % WORD) & 1 == 1
    }

    pub fn iter(&self) -> impl Iterator<Item = Coalition> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Restrict every coalition to the players `range` (e.g. the image or
    /// the text players), renumbered from 0.
    pub fn slice_players(&self, range: std::ops::Range<usize>) -> CoalitionBatch {
        let mut out = CoalitionBatch::with_capacity(range.len(), self.len());
        for i in 0..self.len() {
            let c = Coalition::from_members(
                range.len(),
                range
                    .clone()
                    .filter(|&p| self.contains(i, p))
                    .map(|p| p - range.start),
            );
            out.push(&c);
        }
        out
    }

    /// Host-side dense 0/1 masks, row-major `[B, d]`.
    pub fn to_mask_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.d);
        for i in 0..self.len() {
            let w = self.words(i);
            out.extend((0..self.d).map(|p| (w[p / WORD] >> (p % WORD) & 1) as u8));
        }
        out
    }

    /// Dense 0/1 mask tensor `[B, d]` on `device` with `dtype`
    /// (1 = player present).
    pub fn to_mask_tensor(&self, device: &Device, dtype: DType) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.to_mask_vec(), (self.len(), self.d), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }
}

impl FromIterator<Coalition> for CoalitionBatch {
    /// Panics on an empty iterator's unknown `d`: use [`CoalitionBatch::new`] then.
    fn from_iter<I: IntoIterator<Item = Coalition>>(iter: I) -> Self {
        let mut it = iter.into_iter().peekable();
        let d = it.peek().map(|c| c.num_players()).unwrap_or(0);
        let mut b = CoalitionBatch::new(d);
        for c in it {
            b.push(&c);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_roundtrip_beyond_one_word() {
        let d = 152;
        let c = Coalition::from_members(d, [0, 63, 64, 151]);
        assert_eq!(c.len(), 4);
        assert!(c.contains(64) && c.contains(151) && !c.contains(1));
        let mut b = CoalitionBatch::new(d);
        b.push(&c);
        b.push(&Coalition::full(d));
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(0), c);
        let t = b.to_mask_tensor(&Device::Cpu, DType::F32).unwrap();
        assert_eq!(t.dims(), &[2, 152]);
        let row: Vec<f32> = t.get(0).unwrap().to_vec1().unwrap();
        assert_eq!(row.iter().sum::<f32>(), 4.0);
        assert_eq!(row[151], 1.0);
        let sliced = b.slice_players(64..152);
        assert_eq!(sliced.get(0).members().collect::<Vec<_>>(), vec![0, 87]);
    }
}
