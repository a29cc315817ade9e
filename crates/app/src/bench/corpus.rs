//! A deterministic synthetic corpus for `mneme bench --synthetic N`: English-like markdown in
//! the manner of the reference generator (../shared/bench/gen_corpus.py): a Zipf vocabulary of
//! real and pronounceable pseudo-words, ~42 % stopwords, headings, lists and small code fences;
//! and keyword queries of 2-3 mid-frequency words.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

const STOPWORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "was", "on",
    "be", "by", "this", "are", "or", "from", "at", "an", "which", "but", "not", "have", "has",
    "can", "will", "all", "their", "more", "one", "been", "if", "its", "also", "these", "when",
    "than", "into", "only", "other", "such", "some", "may", "then", "there", "so", "what", "how",
    "we", "you", "they", "our", "each", "between", "after", "over", "most", "where", "both",
];

const REAL_WORDS: &[&str] = &[
    "system",
    "data",
    "cache",
    "query",
    "index",
    "document",
    "search",
    "vector",
    "model",
    "server",
    "client",
    "request",
    "response",
    "latency",
    "memory",
    "thread",
    "process",
    "file",
    "network",
    "storage",
    "engine",
    "config",
    "service",
    "project",
    "version",
    "update",
    "result",
    "error",
    "performance",
    "throughput",
    "token",
    "embedding",
    "keyword",
    "ranking",
    "score",
    "chunk",
    "metadata",
    "collection",
    "database",
    "table",
    "schema",
    "record",
    "field",
    "value",
    "function",
    "method",
    "class",
    "module",
    "package",
    "library",
    "framework",
    "interface",
    "protocol",
    "endpoint",
    "header",
    "payload",
    "format",
    "parser",
    "stream",
    "buffer",
    "queue",
    "worker",
    "pool",
    "lock",
    "mutex",
    "signal",
    "event",
    "handler",
    "callback",
    "audio",
    "frequency",
    "spectrum",
    "filter",
    "sample",
    "channel",
    "plugin",
    "music",
    "chord",
    "tempo",
    "rhythm",
    "melody",
    "track",
    "mixer",
    "reverb",
    "machine",
    "learning",
    "training",
    "dataset",
    "feature",
    "label",
    "accuracy",
    "gradient",
    "layer",
    "weight",
    "tensor",
    "matrix",
    "kernel",
    "batch",
    "epoch",
    "optimizer",
    "compiler",
    "runtime",
    "allocation",
    "security",
    "password",
    "encryption",
    "certificate",
    "permission",
    "deployment",
    "container",
    "cluster",
    "replica",
    "volume",
    "gateway",
    "proxy",
    "monitoring",
    "metric",
    "alert",
    "dashboard",
    "trace",
    "health",
    "backup",
    "snapshot",
    "migration",
    "rollback",
    "release",
    "benchmark",
    "profile",
    "shard",
    "partition",
    "consistency",
    "durability",
    "transaction",
    "commit",
    "conflict",
    "retry",
    "timeout",
    "recovery",
    "leader",
];

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "str", "th", "tr", "ch", "sp", "sl",
];
const VOWELS: &[&str] = &[
    "a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "oa", "y",
];
const CODAS: &[&str] = &[
    "", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "rt", "ng", "ck",
];

/// splitmix64: a small deterministic generator, the same data on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

pub struct Generator {
    rng: Rng,
    vocab: Vec<String>,
    /// Cumulative Zipf weights of `vocab`.
    cumulative: Vec<f64>,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let mut rng = Rng::new(seed);
        let mut vocab: Vec<String> = REAL_WORDS.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: HashSet<String> = vocab.iter().cloned().collect();
        seen.extend(STOPWORDS.iter().map(|w| (*w).to_owned()));
        while vocab.len() < 20_000 {
            let syllables = [1, 2, 2, 2, 3, 3, 4][rng.below(7)];
            let mut word: String = (0..syllables)
                .map(|_| format!("{}{}", rng.pick(ONSETS), rng.pick(VOWELS)))
                .collect();
            word.push_str(rng.pick(CODAS));
            if (3..=16).contains(&word.len()) && seen.insert(word.clone()) {
                vocab.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=vocab.len())
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(1.07);
                total
            })
            .collect();
        Generator {
            rng,
            vocab,
            cumulative,
        }
    }

    fn zipf_word(&mut self) -> &str {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let target = self.rng.unit() * total;
        let i = self.cumulative.partition_point(|&c| c < target);
        &self.vocab[i.min(self.vocab.len() - 1)]
    }

    fn words(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                if self.rng.unit() < 0.42 {
                    self.rng.pick(STOPWORDS).to_owned()
                } else {
                    self.zipf_word().to_owned()
                }
            })
            .collect()
    }

    fn sentence(&mut self) -> String {
        let n = self.rng.range(8, 22);
        let mut words = self.words(n);
        if let Some(first) = words.first_mut() {
            let mut chars = first.chars();
            if let Some(c) = chars.next() {
                *first = c.to_uppercase().chain(chars).collect();
            }
        }
        format!("{}.", words.join(" "))
    }

    fn title(&mut self, lo: usize, hi: usize) -> String {
        let n = self.rng.range(lo, hi);
        (0..n)
            .map(|_| {
                let word = self.vocab[self.rng.below(2000)].clone();
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One markdown document (~4-5 KB).
    pub fn document(&mut self, index: usize) -> String {
        let mut out = format!("# {}\n\n", self.title(3, 7));
        for _ in 0..self.rng.range(3, 6) {
            out.push_str(&format!("## {}\n\n", self.title(2, 5)));
            for _ in 0..self.rng.range(1, 3) {
                let n = self.rng.range(3, 7);
                let paragraph: Vec<String> = (0..n).map(|_| self.sentence()).collect();
                out.push_str(&paragraph.join(" "));
                out.push_str("\n\n");
            }
            let roll = self.rng.unit();
            if roll < 0.25 {
                for _ in 0..self.rng.range(3, 6) {
                    let n = self.rng.range(3, 9);
                    out.push_str(&format!("- {}\n", self.words(n).join(" ")));
                }
                out.push('\n');
            } else if roll < 0.35 {
                let name = self.vocab[self.rng.below(3000)].clone();
                let method = self.vocab[self.rng.below(3000)].clone();
                out.push_str(&format!(
                    "```python\ndef {name}_{index}(value):\n    return value.{method}()\n```\n\n"
                ));
            }
        }
        out
    }

    /// A generator with the same vocabulary as `Generator::new(seed)` and its own random
    /// stream, for queries that match a corpus generated with `seed`.
    pub fn for_queries(seed: u64) -> Generator {
        let mut generator = Generator::new(seed);
        generator.rng = Rng::new(seed ^ 0x5eed_5eed);
        generator
    }

    /// `n` keyword queries of 2-3 mid-frequency words (ranks 100-3,000).
    pub fn queries(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let k = self.rng.range(2, 3);
                (0..k)
                    .map(|_| self.vocab[self.rng.range(100, 3000)].clone())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

/// Writes `documents` documents into `dir/knowledge` (`doc_000000.md` …); returns that path
/// and the total bytes written.
pub fn write_corpus(
    dir: &Path,
    documents: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> std::io::Result<(PathBuf, u64)> {
    let knowledge = dir.join("knowledge");
    std::fs::create_dir_all(&knowledge)?;
    let mut generator = Generator::new(seed);
    let mut bytes = 0u64;
    for i in 0..documents {
        let text = generator.document(i);
        bytes += text.len() as u64;
        std::fs::write(knowledge.join(format!("doc_{i:06}.md")), text)?;
        progress(i + 1);
    }
    Ok((knowledge, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus() {
        let a: Vec<String> = {
            let mut g = Generator::new(42);
            (0..3).map(|i| g.document(i)).collect()
        };
        let b: Vec<String> = {
            let mut g = Generator::new(42);
            (0..3).map(|i| g.document(i)).collect()
        };
        assert_eq!(a, b);
        assert!(a[0].starts_with("# "));
        assert!(
            a.iter().all(|d| (1500..12_000).contains(&d.len())),
            "{:?}",
            a.iter().map(String::len).collect::<Vec<_>>()
        );
        let mut g = Generator::new(1);
        let queries = g.queries(10);
        assert!(
            queries
                .iter()
                .all(|q| (2..=3).contains(&q.split(' ').count()))
        );
    }
}
