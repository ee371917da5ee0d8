//! Splitting a dataset across processes: `--shard i/n`, Slurm job arrays and
//! Kubernetes Indexed Jobs. Sample k belongs to shard k mod n.
use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` with 0 <= i < n.
    pub fn parse(s: &str) -> Result<Self> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("--shard {s:?}: expected i/n, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .with_context(|| format!("--shard {s:?}: bad index"))?;
        let count: usize = n
            .trim()
            .parse()
            .with_context(|| format!("--shard {s:?}: bad count"))?;
        Self::new(index, count)
    }

    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            bail!("shard {index}/{count}: need 0 <= index < count");
        }
        Ok(Self { index, count })
    }

    /// The shard from the command line, else from the scheduler's environment:
    /// Slurm (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`), or a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` of `MULTISHAP_NUM_SHARDS`, which the
    /// manifest sets to the Job's `completions`), else the whole dataset.
    pub fn resolve(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        if let Some(f) = flag {
            return Self::parse(f);
        }
        let num = |name: &str| -> Result<Option<usize>> {
            env(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .with_context(|| format!("{name}={v:?} is not a number"))
                })
                .transpose()
        };
        if let (Some(id), Some(count)) =
            (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?)
        {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return Self::new(
                id.checked_sub(min)
                    .context("SLURM_ARRAY_TASK_ID below SLURM_ARRAY_TASK_MIN")?,
                count,
            );
        }
        if let Some(idx) = num("JOB_COMPLETION_INDEX")? {
            let count = num("MULTISHAP_NUM_SHARDS")?
                .context("JOB_COMPLETION_INDEX is set but MULTISHAP_NUM_SHARDS is not (set it to the Job's completions)")?;
            return Self::new(idx, count);
        }
        Ok(Self::ALL)
    }

    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// Keeps the items of this shard, in order.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(k, _)| self.owns(*k))
            .map(|(_, t)| t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parse_and_partition() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
        assert!(Shard::parse("0/0").is_err());
        let all: Vec<usize> = (0..10).collect();
        let mut union: Vec<usize> = (0..3)
            .flat_map(|i| Shard::new(i, 3).unwrap().select(all.clone()))
            .collect();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(Shard::new(1, 3).unwrap().select(all), vec![1, 4, 7]);
    }

    #[test]
    fn scheduler_environments() {
        let s = Shard::resolve(
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        let k = Shard::resolve(
            None,
            env(&[("JOB_COMPLETION_INDEX", "1"), ("MULTISHAP_NUM_SHARDS", "2")]),
        )
        .unwrap();
        assert_eq!(k, Shard { index: 1, count: 2 });
        assert!(Shard::resolve(None, env(&[("JOB_COMPLETION_INDEX", "1")])).is_err());
        assert_eq!(
            Shard::resolve(Some("0/2"), env(&[("JOB_COMPLETION_INDEX", "1")]))
                .unwrap()
                .count,
            2
        );
        assert_eq!(Shard::resolve(None, env(&[])).unwrap(), Shard::ALL);
    }
}
