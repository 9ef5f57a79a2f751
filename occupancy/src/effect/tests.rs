use super::*;
use crate::series::step;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Element {
    Crossing(i64),
    Reset,
}

impl Element {
    fn effect(self, clamped: bool) -> Effect {
        match self {
            Self::Crossing(delta) => Effect::crossing(delta, clamped),
            Self::Reset => Effect::reset(),
        }
    }
}

/// The stretch walked one element at a time, as the series and the reference model count.
fn walk(elements: &[Element], c: i64, clamped: bool) -> Outcome {
    let mut out = Outcome {
        count: c,
        min: c,
        max: c,
        entrances: 0,
        exits: 0,
    };
    for element in elements {
        match *element {
            Element::Crossing(delta) => {
                out.count = step(out.count, delta, clamped);
                out.max = out.max.max(out.count);
                if delta > 0 {
                    out.entrances += 1;
                } else {
                    out.exits += 1;
                }
            }
            Element::Reset => out.count = 0,
        }
        out.min = out.min.min(out.count);
    }
    out
}

/// A clamped space's elements (crossings and resets), or Outside's (crossings only).
fn elements(clamped: bool) -> impl Strategy<Value = Vec<Element>> {
    let element = prop_oneof![
        4 => Just(Element::Crossing(1)),
        4 => Just(Element::Crossing(-1)),
        if clamped { 1 } else { 0 } => Just(Element::Reset),
    ];
    prop::collection::vec(element, 1..40)
}

fn case() -> impl Strategy<Value = (bool, Vec<Element>, Vec<usize>, i64)> {
    any::<bool>().prop_flat_map(|clamped| {
        let start = if clamped { 0..30i64 } else { -30..30i64 };
        (
            Just(clamped),
            elements(clamped),
            prop::collection::vec(1usize..40, 0..6),
            start,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// However a stretch is cut into pieces, the pieces' summaries composed in order give
    /// what walking it element by element gives, from any starting count.
    #[test]
    fn composed_summaries_equal_the_walk((clamped, elements, cuts, c) in case()) {
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|&i| i < elements.len()).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([elements.len()]) {
            if cut > from {
                let piece: Vec<Effect> = elements[from..cut].iter().map(|e| e.effect(clamped)).collect();
                pieces.push(Effect::fold(&piece).unwrap());
            }
            from = cut;
        }
        let composed = Effect::fold(&pieces).unwrap();
        prop_assert_eq!(composed.outcome(c), walk(&elements, c, clamped));
        // Left to right or right to left: the same summary.
        let right = pieces.iter().rev().copied().reduce(|acc, e| e.then(&acc)).unwrap();
        prop_assert_eq!(right, composed);
    }
}

#[test]
fn a_departure_from_an_empty_room_is_absorbed_and_a_reset_empties_it() {
    let out = Effect::crossing(-1, true).outcome(0);
    assert_eq!((out.count, out.min, out.max, out.exits), (0, 0, 0, 1));
    let busy = Effect::fold(&[Effect::crossing(1, true), Effect::crossing(1, true)]).unwrap();
    let night = busy.then(&Effect::reset()).then(&Effect::crossing(1, true));
    let out = night.outcome(3);
    assert_eq!((out.count, out.min, out.max), (1, 0, 5));
}

#[test]
fn outside_goes_below_zero() {
    let out = Effect::fold(&[Effect::crossing(-1, false), Effect::crossing(-1, false)])
        .unwrap()
        .outcome(1);
    assert_eq!((out.count, out.min, out.max), (-1, -1, 1));
}
