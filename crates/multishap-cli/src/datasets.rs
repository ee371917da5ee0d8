//! Dataset inputs for `multishap run`: VQAv2, COCO captions, Flickr30k
//! (Karpathy JSON) and a plain JSONL manifest, all read into [`Sample`]s.
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One thing to explain: an image plus a question or caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: String,
    pub image: PathBuf,
    pub text: String,
    /// Ground-truth answers (VQAv2 has ten human answers; manifests at most one).
    pub answers: Vec<String>,
    pub answer_type: Option<String>,
    pub question_type: Option<String>,
}

/// Where the samples come from.
#[derive(Debug, Clone)]
pub enum DatasetSpec {
    /// Plain JSONL: `{"id", "image", "text", "answer"?}`; image paths relative to the manifest.
    Manifest(PathBuf),
    /// VQAv2: questions JSON, annotations JSON (optional for test splits), image folder.
    Vqa2 {
        questions: PathBuf,
        annotations: Option<PathBuf>,
        images: PathBuf,
    },
    /// COCO captions (`captions_*.json`): one sample per caption.
    CocoCaptions { captions: PathBuf, images: PathBuf },
    /// Flickr30k in the Karpathy split format (`dataset_flickr30k.json`).
    Flickr30k {
        karpathy: PathBuf,
        images: PathBuf,
        split: Option<String>,
    },
}

pub fn load(spec: &DatasetSpec) -> Result<Vec<Sample>> {
    let samples = match spec {
        DatasetSpec::Manifest(p) => load_manifest(p)?,
        DatasetSpec::Vqa2 {
            questions,
            annotations,
            images,
        } => load_vqa2(questions, annotations.as_deref(), images)?,
        DatasetSpec::CocoCaptions { captions, images } => load_coco_captions(captions, images)?,
        DatasetSpec::Flickr30k {
            karpathy,
            images,
            split,
        } => load_flickr30k(karpathy, images, split.as_deref())?,
    };
    let mut seen = std::collections::HashSet::new();
    for s in &samples {
        if !seen.insert(s.id.as_str()) {
            bail!(
                "duplicate sample id {:?} in the dataset: ids must be unique for --resume",
                s.id
            );
        }
    }
    Ok(samples)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the expected JSON", path.display()))
}

#[derive(Deserialize)]
struct ManifestLine {
    id: serde_json::Value,
    image: PathBuf,
    text: String,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    answer_type: Option<String>,
    #[serde(default)]
    question_type: Option<String>,
}

pub fn load_manifest(path: &Path) -> Result<Vec<Sample>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m: ManifestLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"id\", \"image\", \"text\", \"answer\"?}}",
                path.display(),
                lineno + 1
            )
        })?;
        let id = match m.id {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => bail!(
                "{}:{}: id must be a string or number, got {other}",
                path.display(),
                lineno + 1
            ),
        };
        if m.text.trim().is_empty() {
            bail!(
                "{}:{}: empty text for sample {id:?}",
                path.display(),
                lineno + 1
            );
        }
        let image = if m.image.is_absolute() {
            m.image
        } else {
            base.join(m.image)
        };
        out.push(Sample {
            id,
            image,
            text: m.text,
            answers: m.answer.into_iter().collect(),
            answer_type: m.answer_type,
            question_type: m.question_type,
        });
    }
    if out.is_empty() {
        bail!("manifest {} has no samples", path.display());
    }
    Ok(out)
}

#[derive(Deserialize)]
struct VqaQuestions {
    questions: Vec<VqaQuestion>,
}
#[derive(Deserialize)]
struct VqaQuestion {
    image_id: u64,
    question: String,
    question_id: u64,
}
#[derive(Deserialize)]
struct VqaAnnotations {
    annotations: Vec<VqaAnnotation>,
}
#[derive(Deserialize)]
struct VqaAnnotation {
    question_id: u64,
    #[serde(default)]
    answer_type: Option<String>,
    #[serde(default)]
    question_type: Option<String>,
    #[serde(default)]
    answers: Vec<VqaAnswer>,
    #[serde(default)]
    multiple_choice_answer: Option<String>,
}
#[derive(Deserialize)]
struct VqaAnswer {
    answer: String,
}

/// Finds a COCO image by id in a folder, accepting the 2014 naming
/// (`COCO_val2014_000000000042.jpg`) and the 2017 naming (`000000000042.jpg`).
fn coco_image_index(images: &Path) -> Result<HashMap<u64, PathBuf>> {
    let mut index = HashMap::new();
    let entries = fs::read_dir(images)
        .with_context(|| format!("cannot read image folder {}", images.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let digits = stem.rsplit('_').next().unwrap_or(stem);
        if let Ok(id) = digits.parse::<u64>() {
            index.insert(id, path);
        }
    }
    Ok(index)
}

pub fn load_vqa2(
    questions: &Path,
    annotations: Option<&Path>,
    images: &Path,
) -> Result<Vec<Sample>> {
    let qs: VqaQuestions = read_json(questions)?;
    let anns: HashMap<u64, VqaAnnotation> = match annotations {
        Some(p) => read_json::<VqaAnnotations>(p)?
            .annotations
            .into_iter()
            .map(|a| (a.question_id, a))
            .collect(),
        None => HashMap::new(),
    };
    let index = coco_image_index(images)?;
    qs.questions
        .into_iter()
        .map(|q| {
            let image = index.get(&q.image_id).cloned().ok_or_else(|| {
                anyhow!(
                    "no image for image_id {} in {}",
                    q.image_id,
                    images.display()
                )
            })?;
            let ann = anns.get(&q.question_id);
            let mut answers: Vec<String> = ann
                .map(|a| a.answers.iter().map(|x| x.answer.clone()).collect())
                .unwrap_or_default();
            if answers.is_empty() {
                answers.extend(ann.and_then(|a| a.multiple_choice_answer.clone()));
            }
            Ok(Sample {
                id: q.question_id.to_string(),
                image,
                text: q.question,
                answers,
                answer_type: ann.and_then(|a| a.answer_type.clone()),
                question_type: ann.and_then(|a| a.question_type.clone()),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CocoCaptions {
    images: Vec<CocoImage>,
    annotations: Vec<CocoCaption>,
}
#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}
#[derive(Deserialize)]
struct CocoCaption {
    id: u64,
    image_id: u64,
    caption: String,
}

pub fn load_coco_captions(captions: &Path, images: &Path) -> Result<Vec<Sample>> {
    let c: CocoCaptions = read_json(captions)?;
    let files: HashMap<u64, &str> = c
        .images
        .iter()
        .map(|i| (i.id, i.file_name.as_str()))
        .collect();
    c.annotations
        .iter()
        .map(|a| {
            let file = files.get(&a.image_id).ok_or_else(|| {
                anyhow!("caption {} refers to unknown image_id {}", a.id, a.image_id)
            })?;
            Ok(Sample {
                id: a.id.to_string(),
                image: images.join(file),
                text: a.caption.trim().to_string(),
                answers: vec![],
                answer_type: None,
                question_type: None,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct Karpathy {
    images: Vec<KarpathyImage>,
}
#[derive(Deserialize)]
struct KarpathyImage {
    filename: String,
    #[serde(default)]
    split: Option<String>,
    sentences: Vec<KarpathySentence>,
}
#[derive(Deserialize)]
struct KarpathySentence {
    raw: String,
    sentid: u64,
}

pub fn load_flickr30k(karpathy: &Path, images: &Path, split: Option<&str>) -> Result<Vec<Sample>> {
    let k: Karpathy = read_json(karpathy)?;
    Ok(k.images
        .iter()
        .filter(|im| split.is_none() || im.split.as_deref() == split)
        .flat_map(|im| {
            im.sentences.iter().map(move |s| Sample {
                id: s.sentid.to_string(),
                image: images.join(&im.filename),
                text: s.raw.trim().to_string(),
                answers: vec![],
                answer_type: None,
                question_type: None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn manifest_resolves_relative_images_and_rejects_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "m.jsonl",
            "{\"id\": 1, \"image\": \"a.png\", \"text\": \"what?\", \"answer\": \"red\"}\n\n{\"id\": \"b\", \"image\": \"/x/b.png\", \"text\": \"hi\"}\n",
        );
        let s = load_manifest(&m).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "1");
        assert_eq!(s[0].image, dir.path().join("a.png"));
        assert_eq!(s[0].answers, vec!["red".to_string()]);
        assert_eq!(s[1].image, PathBuf::from("/x/b.png"));

        let bad = write(
            dir.path(),
            "bad.jsonl",
            "{\"id\": 1, \"text\": \"no image\"}\n",
        );
        let err = format!("{:#}", load_manifest(&bad).unwrap_err());
        assert!(err.contains("bad.jsonl:1"), "{err}");
        let dup = write(dir.path(), "dup.jsonl", "{\"id\":1,\"image\":\"a\",\"text\":\"x\"}\n{\"id\":1,\"image\":\"a\",\"text\":\"y\"}\n");
        let err = load(&DatasetSpec::Manifest(dup)).unwrap_err().to_string();
        assert!(err.contains("duplicate sample id"), "{err}");
    }

    #[test]
    fn vqa2_joins_questions_annotations_and_both_image_namings() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = dir.path().join("imgs");
        fs::create_dir(&imgs).unwrap();
        fs::write(imgs.join("COCO_val2014_000000000042.jpg"), b"x").unwrap();
        fs::write(imgs.join("000000000007.jpg"), b"x").unwrap();
        let q = write(
            dir.path(),
            "q.json",
            r#"{"questions":[{"image_id":42,"question":"How many?","question_id":420},{"image_id":7,"question":"What color?","question_id":70}]}"#,
        );
        let a = write(
            dir.path(),
            "a.json",
            r#"{"annotations":[{"question_id":420,"image_id":42,"answer_type":"number","question_type":"how many","multiple_choice_answer":"2","answers":[{"answer":"2","answer_confidence":"yes","answer_id":1},{"answer":"3","answer_confidence":"maybe","answer_id":2}]}]}"#,
        );
        let s = load_vqa2(&q, Some(&a), &imgs).unwrap();
        assert_eq!(s[0].id, "420");
        assert_eq!(s[0].answers, vec!["2", "3"]);
        assert_eq!(s[0].answer_type.as_deref(), Some("number"));
        assert!(s[0].image.ends_with("COCO_val2014_000000000042.jpg"));
        assert!(s[1].image.ends_with("000000000007.jpg"));
        assert!(s[1].answers.is_empty());
        let missing = write(
            dir.path(),
            "q2.json",
            r#"{"questions":[{"image_id":9,"question":"?","question_id":1}]}"#,
        );
        assert!(load_vqa2(&missing, None, &imgs)
            .unwrap_err()
            .to_string()
            .contains("no image for image_id 9"));
    }

    #[test]
    fn coco_and_flickr_captions() {
        let dir = tempfile::tempdir().unwrap();
        let c = write(
            dir.path(),
            "c.json",
            r#"{"images":[{"id":1,"file_name":"x.jpg"}],"annotations":[{"id":5,"image_id":1,"caption":" A cat. "},{"id":6,"image_id":1,"caption":"Two cats"}]}"#,
        );
        let s = load_coco_captions(&c, dir.path()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "A cat.");
        assert_eq!(s[1].image, dir.path().join("x.jpg"));
        let k = write(
            dir.path(),
            "k.json",
            r#"{"images":[{"filename":"f.jpg","split":"test","sentences":[{"raw":"a dog","sentid":3}]},{"filename":"g.jpg","split":"train","sentences":[{"raw":"a man","sentid":4}]}]}"#,
        );
        let s = load_flickr30k(&k, dir.path(), Some("test")).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].id, "3");
    }
}
