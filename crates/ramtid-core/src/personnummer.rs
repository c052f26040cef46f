//! Refusing ids that look like a Swedish personal identity number (*personnummer*) or
//! coordination number (*samordningsnummer*). ramtid works on pseudonymous ids only; a real
//! identity number in a request is a mistake upstream that must not reach logs or storage.

/// Most separator characters between two digit groups that still join them into one
/// number (`19121212 - 1212` has three).
const MAX_SEPARATOR_RUN: usize = 3;

/// True when `id` contains, anywhere, a number written like a personnummer or
/// samordningsnummer: 10 digits (YYMMDDNNNC) or 12 (CCYYMMDDNNNC, century 18–20), a
/// plausible month and day (samordningsnummer: day + 60) and a valid Luhn check digit.
///
/// The digits may be split into groups by any separators (`-`, `+`, spaces, an en dash,
/// `_`, `.`, `/`, …: any run of up to three characters that are neither letters nor
/// digits) and the number may carry any prefix or suffix (`pnr:`, `H-`). Every run of
/// consecutive digit groups adding up to 10 or 12 digits is checked, so a number is found
/// whatever is written around or inside it. A letter ends a number. Full-width digits
/// count as digits.
pub fn looks_like_personnummer(id: &str) -> bool {
    // Digits of the current chain of groups, and where each group of it starts.
    let mut digits: Vec<u8> = Vec::with_capacity(16);
    let mut starts: Vec<usize> = Vec::with_capacity(4);
    let mut separators = 0usize;
    for c in id.chars() {
        if let Some(d) = digit(c) {
            if digits.is_empty() || separators > 0 {
                starts.push(digits.len());
            }
            separators = 0;
            digits.push(d);
        } else if c.is_alphanumeric() || separators == MAX_SEPARATOR_RUN {
            if chain_has_number(&digits, &starts) {
                return true;
            }
            digits.clear();
            starts.clear();
            separators = 0;
        } else if !digits.is_empty() {
            separators += 1;
        }
    }
    chain_has_number(&digits, &starts)
}

fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        // Full-width digits, as some input methods write them.
        '\u{ff10}'..='\u{ff19}' => Some((c as u32 - 0xff10) as u8),
        _ => None,
    }
}

/// Whether consecutive groups of a chain make up a 10- or 12-digit identity number.
fn chain_has_number(digits: &[u8], starts: &[usize]) -> bool {
    for (i, &from) in starts.iter().enumerate() {
        let ends = starts[i + 1..].iter().copied().chain([digits.len()]);
        for to in ends {
            let found = match to - from {
                10 => is_number(&digits[from..to]),
                12 => {
                    let century = digits[from] * 10 + digits[from + 1];
                    (18..=20).contains(&century) && is_number(&digits[from + 2..to])
                }
                n if n > 12 => break,
                _ => false,
            };
            if found {
                return true;
            }
        }
    }
    false
}

/// YYMMDDNNNC with a plausible date and a valid check digit.
fn is_number(ten: &[u8]) -> bool {
    let month = ten[2] * 10 + ten[3];
    let day = ten[4] * 10 + ten[5];
    let day_ok = (1..=31).contains(&day) || (61..=91).contains(&day);
    (1..=12).contains(&month) && day_ok && luhn_valid(ten)
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .map(|&d| u32::from(d))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::looks_like_personnummer as pnr;

    #[test]
    fn every_format_with_a_valid_check_digit_is_caught() {
        // Skatteverket's published test numbers.
        for id in [
            "8112189876",
            "811218-9876",
            "198112189876",
            "19811218-9876",
            "811218+9876",
            "7010632391", // samordningsnummer (day 63)
            "701063-2391",
            "197010632391",
        ] {
            assert!(pnr(id), "{id}");
        }
    }

    #[test]
    fn pseudonyms_and_wrong_check_digits_pass() {
        for id in [
            "H-0042",
            "NS-000123",
            "8112189875", // wrong check digit
            "811218-9875",
            "198112189870",
            "8113189876",         // month 13
            "8112329876",         // day 32
            "81121898761",        // 11 digits
            "218112189876",       // century 21: not the 12-digit form
            "V-2025030312345678", // one group of 16 digits is neither form
            "19121212A1212",      // a letter ends a number
            "19121212    1212",   // four separators: two numbers, not one
            "121212-1213",        // wrong check digit
            "",
        ] {
            assert!(!pnr(id), "{id}");
        }
    }

    #[test]
    fn any_separator_prefix_or_suffix_is_seen_through() {
        for id in [
            "19121212 1212",
            "19121212\u{2013}1212", // en dash
            "19121212\u{2014}1212", // em dash
            "19121212\u{a0}1212",   // no-break space
            "19121212 - 1212",
            "19121212-1212",
            "pnr:19121212-1212",
            "H-19121212-1212",
            "H19121212-1212",
            "1912 1212 1212",
            "121212-1212",
            "121212 1212",
            "121212_1212",
            "121212.1212",
            "x/191212121212/y",
            "8112189876X",
            "case 2025-19121212-1212",
            "\u{ff11}\u{ff19}\u{ff11}\u{ff12}\u{ff11}\u{ff12}\u{ff11}\u{ff12}-\u{ff11}\u{ff12}\u{ff11}\u{ff12}",
            "ab 701063-2391 cd",
        ] {
            assert!(pnr(id), "{id}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let long_digits = "9".repeat(10_000);
        let long_groups = "12-".repeat(3000);
        for id in [
            "é",
            "1é2",
            "\u{0}",
            "-+-",
            "1-",
            "-1",
            &long_digits,
            &long_groups,
        ] {
            let _ = pnr(id);
        }
    }
}
