//! [`Pattern`]: who sends proxies to whom (pair, fan-out, all-to-all).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Pair,
    Fanout,
    AllToAll,
}

impl Pattern {
    pub fn parse(s: &str) -> std::result::Result<Vec<Pattern>, String> {
        match s {
            "pair" => Ok(vec![Pattern::Pair]),
            "fanout" => Ok(vec![Pattern::Fanout]),
            "alltoall" => Ok(vec![Pattern::AllToAll]),
            "all" => Ok(vec![Pattern::Pair, Pattern::Fanout, Pattern::AllToAll]),
            o => Err(format!(
                "unknown pattern {o:?} (pair, fanout, alltoall, all)"
            )),
        }
    }
    /// The ranks that receive rank 0's proxy (pair and fan-out).
    pub(crate) fn consumers(self, ranks: usize) -> Vec<usize> {
        match self {
            Pattern::Pair => vec![1],
            _ => (1..ranks).collect(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pair => "pair",
            Pattern::Fanout => "fanout",
            Pattern::AllToAll => "alltoall",
        }
    }
}
