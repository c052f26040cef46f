//! Refusing ids that look like a Swedish personal identity number (*personnummer*) or
//! coordination number (*samordningsnummer*). ramtid works on pseudonymous ids only; a real
//! identity number in a request is a mistake upstream that must not reach logs or storage.

/// True when `id` is written like a personnummer or samordningsnummer: 10 digits
/// (YYMMDDNNNC) or 12 (YYYYMMDDNNNC), optionally with `-` or `+` before the last four, a
/// plausible month and day (samordningsnummer: day + 60), and a valid Luhn check digit.
pub fn looks_like_personnummer(id: &str) -> bool {
    let s = id.trim();
    let b = s.as_bytes();
    let digits: String = match b.len() {
        10 | 12 => s.to_string(),
        11 | 13 if matches!(b[b.len() - 5], b'-' | b'+') => {
            format!("{}{}", &s[..s.len() - 5], &s[s.len() - 4..])
        }
        _ => return false,
    };
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    // The check digit covers the 10-digit form.
    let ten = &digits[digits.len() - 10..];
    let month: u32 = ten[2..4].parse().unwrap_or(0);
    let day: u32 = ten[4..6].parse().unwrap_or(0);
    let day_ok = (1..=31).contains(&day) || (61..=91).contains(&day);
    if !(1..=12).contains(&month) || !day_ok {
        return false;
    }
    luhn_valid(ten)
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .map(|c| u32::from(c - b'0'))
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
            "8113189876",  // month 13
            "8112329876",  // day 32
            "81121898761", // 11 digits
            "811218_9876",
            "",
        ] {
            assert!(!pnr(id), "{id}");
        }
    }
}
