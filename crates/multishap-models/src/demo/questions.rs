//! Questions with answers, and captions, about a [`Scene`]. Every question is
//! answerable from the scene: a question about "the triangle" is only asked when
//! there is exactly one triangle, "what shape is red?" only when exactly one
//! shape is red; yes/no questions are balanced.

use super::rng::DemoRng;
use super::scene::{Colour, Scene, ShapeKind};

/// The question templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuestionKind {
    /// "what color is the {shape}?" -> colour
    ColourOf(ShapeKind),
    /// "what shape is {colour}?" -> shape
    ShapeOf(Colour),
    /// "is there a {colour} {shape}?" -> yes / no
    Exists(Colour, ShapeKind),
    /// "how many shapes are there?" -> 1 / 2 / 3
    Count,
}

impl QuestionKind {
    /// "what color is the {shape}?" / "what shape is {colour}?": the question
    /// names one shape by its key word and asks about that shape alone.
    pub fn is_about_one_shape(self) -> bool {
        matches!(self, QuestionKind::ColourOf(_) | QuestionKind::ShapeOf(_))
    }
}

/// A question, its answer, and which shape (if any) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub kind: QuestionKind,
    pub text: String,
    pub answer: String,
    /// Index into `Scene::shapes` of the one shape the question refers to
    /// (questions about one shape, and "is there ...?" answered yes).
    pub target: Option<usize>,
    /// The word of the question that names the target (shape word for
    /// `ColourOf`, colour word for `ShapeOf`, shape word for `Exists`).
    pub key_word: Option<String>,
}

/// Every answer the VQA model can give, in label order (`id2label`).
pub fn answer_labels() -> Vec<String> {
    let mut v: Vec<String> = Colour::ALL.iter().map(|c| c.name().to_string()).collect();
    v.extend(ShapeKind::ALL.iter().map(|s| s.name().to_string()));
    v.extend(["yes", "no", "1", "2", "3"].iter().map(|s| s.to_string()));
    v
}

/// Text of a question.
pub fn question_text(kind: QuestionKind) -> String {
    match kind {
        QuestionKind::ColourOf(s) => format!("what color is the {}?", s.name()),
        QuestionKind::ShapeOf(c) => format!("what shape is {}?", c.name()),
        QuestionKind::Exists(c, s) => format!("is there a {} {}?", c.name(), s.name()),
        QuestionKind::Count => "how many shapes are there?".to_string(),
    }
}

/// The answer of `kind` on `scene`, or `None` when the question is ambiguous
/// there (no or several shapes of that kind / colour).
pub fn answer(scene: &Scene, kind: QuestionKind) -> Option<(String, Option<usize>)> {
    match kind {
        QuestionKind::ColourOf(s) => {
            let idx: Vec<usize> = (0..scene.shapes.len())
                .filter(|&i| scene.shapes[i].kind == s)
                .collect();
            (idx.len() == 1).then(|| (scene.shapes[idx[0]].colour.name().to_string(), Some(idx[0])))
        }
        QuestionKind::ShapeOf(c) => {
            let idx: Vec<usize> = (0..scene.shapes.len())
                .filter(|&i| scene.shapes[i].colour == c)
                .collect();
            (idx.len() == 1).then(|| (scene.shapes[idx[0]].kind.name().to_string(), Some(idx[0])))
        }
        QuestionKind::Exists(c, s) => {
            let idx: Vec<usize> = (0..scene.shapes.len())
                .filter(|&i| scene.shapes[i].colour == c && scene.shapes[i].kind == s)
                .collect();
            match idx.len() {
                0 => Some(("no".to_string(), None)),
                1 => Some(("yes".to_string(), Some(idx[0]))),
                _ => Some(("yes".to_string(), None)),
            }
        }
        QuestionKind::Count => match scene.shapes.len() {
            n @ 1..=3 => Some((n.to_string(), None)),
            _ => None,
        },
    }
}

fn key_word(kind: QuestionKind) -> Option<String> {
    match kind {
        QuestionKind::ColourOf(s) => Some(s.name().to_string()),
        QuestionKind::ShapeOf(c) => Some(c.name().to_string()),
        QuestionKind::Exists(_, s) => Some(s.name().to_string()),
        QuestionKind::Count => None,
    }
}

fn build(scene: &Scene, kind: QuestionKind) -> Option<Question> {
    let (answer, target) = answer(scene, kind)?;
    Some(Question {
        kind,
        text: question_text(kind),
        answer,
        target,
        key_word: key_word(kind),
    })
}

/// Draw one answerable question: the template family uniformly among
/// colour-of / shape-of / exists / count, then a valid instance. "Is there"
/// questions are yes and no with probability 1/2 each; half of the "no" ones
/// share the colour or the shape of a shape in the scene (hard negatives).
pub fn generate_question(rng: &mut DemoRng, scene: &Scene) -> Question {
    generate_question_from(rng, scene, |rng| rng.below(0, 4))
}

/// Training-only sampler: like [`generate_question`], but the template family
/// (colour-of, shape-of, exists, count) is drawn with relative `weights`
/// (held-out evaluation keeps [`generate_question`]'s uniform families).
pub fn generate_question_weighted(rng: &mut DemoRng, scene: &Scene, weights: [f64; 4]) -> Question {
    // Colour-of / shape-of may be unanswerable on a scene; exists and count
    // never are, so one of them needs a positive weight (else: uniform).
    let weights = if weights.iter().all(|w| *w >= 0.0) && weights[2] + weights[3] > 0.0 {
        weights
    } else {
        [1.0; 4]
    };
    let total: f64 = weights.iter().sum();
    generate_question_from(rng, scene, |rng| {
        let mut u = rng.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        3
    })
}

fn generate_question_from(
    rng: &mut DemoRng,
    scene: &Scene,
    mut draw_family: impl FnMut(&mut DemoRng) -> usize,
) -> Question {
    let colour_of: Vec<QuestionKind> = ShapeKind::ALL
        .iter()
        .filter(|&&s| scene.count_kind(s) == 1)
        .map(|&s| QuestionKind::ColourOf(s))
        .collect();
    let shape_of: Vec<QuestionKind> = Colour::ALL
        .iter()
        .filter(|&&c| scene.count_colour(c) == 1)
        .map(|&c| QuestionKind::ShapeOf(c))
        .collect();
    loop {
        let family = draw_family(rng);
        let kind = match family {
            0 => match rng.choose(&colour_of) {
                Some(k) => *k,
                None => continue,
            },
            1 => match rng.choose(&shape_of) {
                Some(k) => *k,
                None => continue,
            },
            2 => exists_question(rng, scene),
            _ => QuestionKind::Count,
        };
        if let Some(q) = build(scene, kind) {
            return q;
        }
    }
}

fn exists_question(rng: &mut DemoRng, scene: &Scene) -> QuestionKind {
    if rng.bernoulli(0.5) || scene.shapes.is_empty() {
        // "no": a combination absent from the scene.
        let mut absent = Vec::new();
        let hard = !scene.shapes.is_empty() && rng.bernoulli(0.5);
        for &c in &Colour::ALL {
            for &s in &ShapeKind::ALL {
                if scene.contains(c, s) {
                    continue;
                }
                let shares = scene.shapes.iter().any(|x| x.colour == c || x.kind == s);
                if !hard || shares {
                    absent.push(QuestionKind::Exists(c, s));
                }
            }
        }
        *rng.choose(&absent).unwrap_or(&QuestionKind::Count)
    } else {
        let s = scene.shapes[rng.below(0, scene.shapes.len())];
        QuestionKind::Exists(s.colour, s.kind)
    }
}

/// Caption listing every shape, in a random order: "a red triangle and a blue circle".
pub fn caption(rng: &mut DemoRng, scene: &Scene) -> String {
    let mut order: Vec<usize> = (0..scene.shapes.len()).collect();
    rng.shuffle(&mut order);
    order
        .iter()
        .map(|&i| {
            format!(
                "a {} {}",
                scene.shapes[i].colour.name(),
                scene.shapes[i].kind.name()
            )
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Caption of a single shape: "a red triangle" (pointing-game queries).
pub fn shape_caption(scene: &Scene, index: usize) -> String {
    let s = &scene.shapes[index];
    format!("a {} {}", s.colour.name(), s.kind.name())
}

/// Canonical, order-free description of a scene's content (sorted colour/kind
/// pairs); two scenes with the same key have equally correct captions.
pub fn content_key(scene: &Scene) -> Vec<(Colour, ShapeKind)> {
    let mut v: Vec<(Colour, ShapeKind)> = scene.shapes.iter().map(|s| (s.colour, s.kind)).collect();
    v.sort();
    v
}

/// Every word the generator can emit (questions, answers, captions).
pub fn vocabulary_words() -> Vec<String> {
    let mut v: Vec<String> = [
        "what", "color", "colour", "is", "the", "shape", "there", "a", "how", "many", "shapes",
        "are", "and", "?", "yes", "no", "1", "2", "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(Colour::ALL.iter().map(|c| c.name().to_string()));
    v.extend(ShapeKind::ALL.iter().map(|s| s.name().to_string()));
    v
}

#[cfg(test)]
mod tests {
    use super::super::scene::SceneConfig;
    use super::*;
    use std::collections::HashMap;

    fn sample(seed: u64, n: usize) -> Vec<(Scene, Question)> {
        let cfg = SceneConfig::default();
        (0..n)
            .map(|k| {
                let mut rng = DemoRng::for_stream(seed, k as u64);
                let scene = Scene::generate(&mut rng, &cfg);
                let q = generate_question(&mut rng, &scene);
                (scene, q)
            })
            .collect()
    }

    #[test]
    fn answers_are_consistent_with_the_scene() {
        for (scene, q) in sample(3, 2000) {
            match q.kind {
                QuestionKind::ColourOf(s) => {
                    let hits: Vec<_> = scene.shapes.iter().filter(|x| x.kind == s).collect();
                    assert_eq!(hits.len(), 1, "ambiguous question {q:?}");
                    assert_eq!(q.answer, hits[0].colour.name());
                    assert_eq!(scene.shapes[q.target.unwrap()].kind, s);
                }
                QuestionKind::ShapeOf(c) => {
                    let hits: Vec<_> = scene.shapes.iter().filter(|x| x.colour == c).collect();
                    assert_eq!(hits.len(), 1, "ambiguous question {q:?}");
                    assert_eq!(q.answer, hits[0].kind.name());
                    assert_eq!(scene.shapes[q.target.unwrap()].colour, c);
                }
                QuestionKind::Exists(c, s) => {
                    let present = scene.shapes.iter().any(|x| x.colour == c && x.kind == s);
                    assert_eq!(q.answer, if present { "yes" } else { "no" });
                }
                QuestionKind::Count => assert_eq!(q.answer, scene.shapes.len().to_string()),
            }
            assert!(answer_labels().contains(&q.answer));
            let vocab = vocabulary_words();
            for w in q.text.replace('?', " ?").split_whitespace() {
                assert!(vocab.iter().any(|v| v == w), "{w} not in vocabulary");
            }
        }
    }

    #[test]
    fn yes_no_balanced_and_all_families_present() {
        let mut answers: HashMap<String, usize> = HashMap::new();
        let mut families = [0usize; 4];
        for (_, q) in sample(4, 4000) {
            *answers.entry(q.answer.clone()).or_default() += 1;
            families[match q.kind {
                QuestionKind::ColourOf(_) => 0,
                QuestionKind::ShapeOf(_) => 1,
                QuestionKind::Exists(..) => 2,
                QuestionKind::Count => 3,
            }] += 1;
        }
        let yes = answers["yes"] as f64;
        let no = answers["no"] as f64;
        assert!((yes / (yes + no) - 0.5).abs() < 0.05, "yes {yes} no {no}");
        assert!(families.iter().all(|&f| f > 700), "{families:?}");
        for label in answer_labels() {
            assert!(
                answers.get(&label).copied().unwrap_or(0) > 20,
                "rare answer {label}: {answers:?}"
            );
        }
    }

    #[test]
    fn captions_name_every_shape() {
        for (k, (scene, _)) in sample(6, 200).into_iter().enumerate() {
            let c = caption(&mut DemoRng::new(k as u64), &scene);
            assert_eq!(c.matches(" and ").count() + 1, scene.shapes.len());
            for s in &scene.shapes {
                assert!(
                    c.contains(&format!("{} {}", s.colour.name(), s.kind.name())),
                    "{c}"
                );
            }
        }
    }
}
