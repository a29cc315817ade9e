//! A full-path answer read where it was computed: predictions on symbol ids, resolved to
//! strings only as they are read, on the node state the caller keeps locked. Writing an answer
//! this way builds no owned strings (an answer holds thousands of symbols; sharing each as an
//! `Arc<str>` costs more than the scoring). [`FullAnswer::to_predictions`] gives the owned form.

use std::ops::Range;
use std::sync::Arc;

use super::draft::{Draft, Names, State, event_range, flat_range};
use super::prediction::{Anomaly, FullPrediction, FuturePotential, Metrics, Prediction};
use crate::node::NodeState;
use crate::types::{Emotives, average_emotives};

/// The symbols of one event (or of a flat list), as strings.
#[derive(Clone)]
pub struct Symbols<'a> {
    ids: std::slice::Iter<'a, u32>,
    /// Symbols left out (`missing` leaves out the matches, `extras` the present).
    exclude: &'a [u32],
    names: Names<'a>,
}

impl Symbols<'_> {
    fn next_id(&mut self) -> Option<u32> {
        self.ids
            .by_ref()
            .copied()
            .find(|id| !self.exclude.contains(id))
    }
}

impl<'a> Iterator for Symbols<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.next_id().map(|id| self.names.get(id))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.ids.len()))
    }
}

/// A list of events, each as its [`Symbols`].
#[derive(Clone)]
pub struct Events<'a> {
    source: EventSource<'a>,
    exclude: &'a [u32],
    names: Names<'a>,
}

#[derive(Clone)]
enum EventSource<'a> {
    /// Consecutive events of a pattern: what is left of its body and of their lengths.
    Pattern {
        body: &'a [u32],
        lens: std::slice::Iter<'a, u32>,
    },
    Lists(std::slice::Iter<'a, Vec<u32>>),
}

impl<'a> Iterator for Events<'a> {
    type Item = Symbols<'a>;

    fn next(&mut self) -> Option<Symbols<'a>> {
        let ids = match &mut self.source {
            EventSource::Pattern { body, lens } => {
                let len = *lens.next()? as usize;
                let (event, rest) = body.split_at(len);
                *body = rest;
                event
            }
            EventSource::Lists(lists) => lists.next()?.as_slice(),
        };
        Some(Symbols {
            ids: ids.iter(),
            exclude: self.exclude,
            names: self.names,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.source {
            EventSource::Pattern { lens, .. } => lens.size_hint(),
            EventSource::Lists(lists) => lists.size_hint(),
        }
    }
}

impl ExactSizeIterator for Events<'_> {}

/// A pattern's 40-hex-digit name.
#[derive(Clone, Copy)]
pub struct NameHex([u8; 40]);

impl NameHex {
    fn of(bytes: &[u8; 20]) -> NameHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 40];
        for (i, byte) in bytes.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
        }
        NameHex(out)
    }

    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The full path's answer on the locked node state.
pub struct FullAnswer<'a> {
    st: &'a NodeState,
    state: State<'a>,
    drafts: Vec<Draft>,
    future_potentials: Arc<Vec<FuturePotential>>,
}

impl<'a> FullAnswer<'a> {
    pub(super) fn new(
        st: &'a NodeState,
        state: State<'a>,
        drafts: Vec<Draft>,
        future_potentials: Vec<FuturePotential>,
    ) -> FullAnswer<'a> {
        FullAnswer {
            st,
            state,
            drafts,
            future_potentials: Arc::new(future_potentials),
        }
    }

    pub(super) fn empty(st: &'a NodeState, state: State<'a>) -> FullAnswer<'a> {
        FullAnswer::new(st, state, Vec::new(), Vec::new())
    }

    pub fn len(&self) -> usize {
        self.drafts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.drafts.is_empty()
    }

    /// The predictions, best first.
    pub fn predictions(&self) -> impl ExactSizeIterator<Item = PredictionRef<'_>> {
        self.drafts.iter().map(move |draft| PredictionRef {
            st: self.st,
            names: self.state.names(self.st),
            state_events: &self.state.events,
            draft,
        })
    }

    /// The call's future potentials (which it leaves on the node).
    pub fn future_potentials(&self) -> &Arc<Vec<FuturePotential>> {
        &self.future_potentials
    }

    /// The owned predictions.
    pub fn to_predictions(&self) -> Vec<Prediction> {
        self.predictions()
            .map(|p| Prediction::Full(Box::new(p.to_owned())))
            .collect()
    }
}

/// One prediction of a [`FullAnswer`].
#[derive(Clone, Copy)]
pub struct PredictionRef<'a> {
    st: &'a NodeState,
    names: Names<'a>,
    /// The STM's events as symbol ids.
    state_events: &'a [Vec<u32>],
    draft: &'a Draft,
}

impl<'a> PredictionRef<'a> {
    pub fn name(&self) -> NameHex {
        NameHex::of(&self.st.patterns[self.draft.id as usize].name)
    }

    pub fn frequency(&self) -> u64 {
        self.draft.frequency
    }

    /// The pattern's stored emotives, averaged.
    pub fn emotives(&self) -> Emotives {
        average_emotives(&self.st.patterns[self.draft.id as usize].emotives)
    }

    pub fn metrics(&self) -> &'a Metrics {
        &self.draft.metrics
    }

    pub fn anomalies(&self) -> &'a [Anomaly] {
        &self.draft.anomalies
    }

    pub fn matches(&self) -> Symbols<'a> {
        Symbols {
            ids: self.draft.matches.iter(),
            exclude: &[],
            names: self.names,
        }
    }

    pub fn past(&self) -> Events<'a> {
        self.pattern_events(self.draft.past.clone())
    }

    pub fn present(&self) -> Events<'a> {
        self.pattern_events(self.draft.present.clone())
    }

    pub fn future(&self) -> Events<'a> {
        self.pattern_events(self.draft.future.clone())
    }

    /// The whole pattern.
    pub fn sequence(&self) -> Events<'a> {
        self.pattern_events(0..self.st.event_lens_of(self.draft.id).len())
    }

    /// For each present event, its symbols not among the matches.
    pub fn missing(&self) -> Events<'a> {
        Events {
            exclude: &self.draft.matches,
            ..self.pattern_events(self.draft.present.clone())
        }
    }

    /// For each STM event, its symbols not in the present.
    pub fn extras(&self) -> Events<'a> {
        let draft = self.draft;
        let present =
            &self.st.body(draft.id)[flat_range(self.st.event_lens_of(draft.id), &draft.present)];
        Events {
            source: EventSource::Lists(self.state_events.iter()),
            exclude: present,
            names: self.names,
        }
    }

    fn pattern_events(&self, events: Range<usize>) -> Events<'a> {
        let id = self.draft.id;
        let lens = self.st.event_lens_of(id);
        let body = self.st.body(id);
        let start = if events.is_empty() {
            0
        } else {
            event_range(lens, events.start).start
        };
        Events {
            source: EventSource::Pattern {
                body: &body[start..],
                lens: lens[events].iter(),
            },
            exclude: &[],
            names: self.names,
        }
    }

    /// The owned form.
    pub fn to_owned(&self) -> FullPrediction {
        let symbols = |mut s: Symbols<'_>| {
            let names = s.names;
            std::iter::from_fn(|| s.next_id())
                .map(|id| names.symbol(id))
                .collect::<Vec<_>>()
        };
        let events = |e: Events<'_>| e.map(symbols).collect::<Vec<_>>();
        FullPrediction {
            name: self.name().as_str().to_owned(),
            frequency: self.frequency(),
            emotives: self.emotives(),
            matches: symbols(self.matches()),
            past: events(self.past()),
            present: events(self.present()),
            missing: events(self.missing()),
            extras: events(self.extras()),
            anomalies: self.anomalies().to_vec(),
            sequence: events(self.sequence()),
            future: events(self.future()),
            metrics: *self.metrics(),
        }
    }
}
