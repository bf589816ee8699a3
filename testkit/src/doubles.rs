//! The consumer's test doubles, in memory: a Mackerel that answers each try
//! from a script (and keeps what it answered 200 to, for reads), and a DLQ that
//! keeps what it is given (or refuses it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfn_mackerel_consumer::alerting::StatusPoint;
use sfn_mackerel_consumer::api_key::ApiKey;
use sfn_mackerel_consumer::delivery::{SeriesRange, Transport};
use sfn_mackerel_consumer::dlq::{DeadLetters, ParkRequest};
use sfn_mackerel_consumer::retry::AttemptResult;
use sfn_mackerel_message::timestamp::minute_of;
use sfn_mackerel_message::SetAsideReason;
use tokio::time::Instant;

/// One try the scripted Mackerel saw, and how it answered.
#[derive(Debug, Clone)]
pub struct SeenTry {
    pub service: String,
    pub body: Vec<u8>,
    pub at: Instant,
    pub answer: AttemptResult,
}

/// A stored series: value by minute (epoch minutes).
type StoredSeries = std::collections::BTreeMap<i64, f64>;

/// A script in play: the answers not given yet, then the one for every later try.
type Script = (VecDeque<AttemptResult>, AttemptResult);

/// A Mackerel in memory that answers each service's tries from a script. A
/// scripted `TimedOut` takes the whole request timeout, as a real one does.
#[derive(Clone, Default)]
pub struct ScriptedTransport {
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    default: Arc<Mutex<Option<Script>>>,
    seen: Arc<Mutex<Vec<SeenTry>>>,
    /// What posts answered with Mackerel's success stored, per (service, name),
    /// one value per minute, the later write winning.
    stored: Arc<Mutex<HashMap<(String, String), StoredSeries>>>,
    /// Every series read: (service, name, range).
    reads: Arc<Mutex<Vec<(String, String, SeriesRange)>>>,
    /// Reads fail with this when set.
    failing_reads: Arc<Mutex<Option<String>>>,
    /// Reads answer these (time, value) points, whatever was asked, when set.
    read_answer: Arc<Mutex<Option<Vec<StatusPoint>>>>,
}

impl ScriptedTransport {
    /// Every service's tries get these answers in order, then Mackerel's 200.
    pub fn answering(answers: Vec<AttemptResult>) -> Self {
        let transport = Self::default();
        *transport.default.lock().unwrap() = Some((answers.into(), AttemptResult::mackerel(200)));
        transport
    }

    /// Each service gets its own answers, then its own answer to every later try.
    pub fn per_service(scripts: Vec<(String, Vec<AttemptResult>, AttemptResult)>) -> Self {
        let transport = Self::default();
        *transport.scripts.lock().unwrap() = scripts
            .into_iter()
            .map(|(service, first, then)| (service, (first.into(), then)))
            .collect();
        transport
    }

    /// Every try so far, in order.
    pub fn seen(&self) -> Vec<SeenTry> {
        self.seen.lock().unwrap().clone()
    }

    /// Every series read so far, in order.
    pub fn reads(&self) -> Vec<(String, String, SeriesRange)> {
        self.reads.lock().unwrap().clone()
    }

    /// Makes every later read answer exactly these (time, value) points, as a
    /// server that ignores the range asked for would.
    pub fn answer_reads_with(&self, points: Vec<(i64, f64)>) {
        *self.read_answer.lock().unwrap() = Some(
            points
                .into_iter()
                .map(|(time, value)| StatusPoint { time, value })
                .collect(),
        );
    }

    /// Makes every later read fail with `why`.
    pub fn fail_reads(&self, why: &str) {
        *self.failing_reads.lock().unwrap() = Some(why.to_owned());
    }

    /// The values a series holds by minute start, as a read would give them.
    pub fn stored(&self, service: &str, name: &str) -> Vec<(i64, f64)> {
        self.stored
            .lock()
            .unwrap()
            .get(&(service.to_owned(), name.to_owned()))
            .map(|series| series.iter().map(|(m, v)| (m * 60, *v)).collect())
            .unwrap_or_default()
    }

    fn store(&self, service: &str, body: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Element {
            name: String,
            time: i64,
            value: f64,
        }
        let Ok(elements) = serde_json::from_slice::<Vec<Element>>(body) else {
            return;
        };
        let mut stored = self.stored.lock().unwrap();
        for element in elements {
            stored
                .entry((service.to_owned(), element.name))
                .or_default()
                .insert(minute_of(element.time), element.value);
        }
    }

    /// The gaps between consecutive tries, in milliseconds.
    pub fn gaps_ms(&self) -> Vec<u128> {
        let seen = self.seen.lock().unwrap();
        seen.windows(2)
            .map(|w| (w[1].at - w[0].at).as_millis())
            .collect()
    }

    fn next_answer(&self, service: &str) -> AttemptResult {
        let mut scripts = self.scripts.lock().unwrap();
        if let Some((first, then)) = scripts.get_mut(service) {
            return first.pop_front().unwrap_or_else(|| then.clone());
        }
        let mut default = self.default.lock().unwrap();
        let (first, then) = default
            .as_mut()
            .unwrap_or_else(|| panic!("the handler posted to unscripted service {service:?}"));
        first.pop_front().unwrap_or_else(|| then.clone())
    }
}

impl Transport for ScriptedTransport {
    async fn post_tsdb(
        &self,
        service: &str,
        body: &[u8],
        _key: &ApiKey,
        timeout: Duration,
    ) -> AttemptResult {
        let answer = self.next_answer(service);
        self.seen.lock().unwrap().push(SeenTry {
            service: service.to_owned(),
            body: body.to_vec(),
            at: Instant::now(),
            answer: answer.clone(),
        });
        if answer == AttemptResult::TimedOut {
            tokio::time::sleep(timeout).await;
        }
        if matches!(&answer, AttemptResult::Answered(a) if a.status == 200 && a.mackerel_success) {
            self.store(service, body);
        }
        answer
    }

    async fn read_series(
        &self,
        service: &str,
        name: &str,
        range: SeriesRange,
        _key: &ApiKey,
        _timeout: Duration,
    ) -> Result<Vec<StatusPoint>, String> {
        self.reads
            .lock()
            .unwrap()
            .push((service.to_owned(), name.to_owned(), range));
        if let Some(why) = self.failing_reads.lock().unwrap().clone() {
            return Err(why);
        }
        if let Some(points) = self.read_answer.lock().unwrap().clone() {
            return Ok(points);
        }
        Ok(self
            .stored(service, name)
            .into_iter()
            .filter(|(time, _)| (range.from..=range.to).contains(time))
            .map(|(time, value)| StatusPoint { time, value })
            .collect())
    }
}

/// A DLQ kept in memory that can refuse everything, or chosen messages.
#[derive(Default, Clone)]
pub struct MemoryDeadLetters {
    /// (message id, reason, body) of every parked message, in parking order.
    pub parked: Arc<Mutex<Vec<(String, SetAsideReason, String)>>>,
    /// The `ReasonDetail` of each parked message, in the same order.
    pub details: Arc<Mutex<Vec<String>>>,
    /// Every message id offered to the DLQ, parked or refused.
    pub attempts: Arc<Mutex<Vec<String>>>,
    /// Refuse every message.
    pub refuse: bool,
    /// Refuse these message ids.
    pub refused_ids: Arc<HashSet<String>>,
}

impl MemoryDeadLetters {
    pub fn parked(&self) -> Vec<(String, SetAsideReason, String)> {
        self.parked.lock().unwrap().clone()
    }

    pub fn details(&self) -> Vec<String> {
        self.details.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> Vec<String> {
        self.attempts.lock().unwrap().clone()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn park(&self, requests: &[ParkRequest<'_>], _until: Instant) -> Vec<Result<(), String>> {
        requests
            .iter()
            .map(|request| {
                let id = request.message.id.clone();
                self.attempts.lock().unwrap().push(id.clone());
                if self.refuse || self.refused_ids.contains(&id) {
                    return Err("scripted DLQ refusal".to_owned());
                }
                self.parked.lock().unwrap().push((
                    id,
                    request.reason,
                    request.message.body.clone(),
                ));
                self.details.lock().unwrap().push(request.detail.to_owned());
                Ok(())
            })
            .collect()
    }
}
