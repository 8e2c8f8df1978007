//! Static bearer tokens from a file in kube-apiserver's `--token-auth-file` format: one CSV
//! line per token, `token,user,uid[,"group1,group2"]`; blank lines and `#` comments skipped.

use std::collections::HashMap;

use super::UserInfo;

/// Errors reading a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// A line is malformed (the token itself is never shown).
    #[error("line {line}: {why}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Tokens and the users they stand for.
#[derive(Default)]
pub struct TokenFile {
    users: HashMap<String, UserInfo>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("tokens", &self.users.len())
            .finish()
    }
}

/// Splits one CSV line, honouring double quotes (`""` is a literal quote).
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

impl TokenFile {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: &str| TokenFileError::Line {
                line: i + 1,
                why: why.to_owned(),
            };
            let f = fields(line).map_err(|e| err(&e))?;
            if f.len() < 3 {
                return Err(err("needs at least token,user,uid"));
            }
            let (token, name, uid) = (f[0].trim(), f[1].trim(), f[2].trim());
            if token.is_empty() || name.is_empty() {
                return Err(err("the token and the user name must not be empty"));
            }
            let mut groups: Vec<String> = f
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            groups.push(super::AUTHENTICATED.to_owned());
            if users
                .insert(
                    token.to_owned(),
                    UserInfo {
                        name: name.to_owned(),
                        uid: uid.to_owned(),
                        groups,
                        extra: Default::default(),
                    },
                )
                .is_some()
            {
                return Err(err("the token is listed twice"));
            }
        }
        Ok(Self { users })
    }

    /// The user a token stands for, compared without leaking timing per character.
    pub fn user(&self, token: &str) -> Option<UserInfo> {
        // Tokens are looked up by hash-map key (its timing depends on the hash, not on how
        // many leading characters match), then compared in constant time.
        self.users
            .get_key_value(token)
            .filter(|(k, _)| crate::api::constant_time_eq(k.as_bytes(), token.as_bytes()))
            .map(|(_, u)| u.clone())
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kube_apiserver_token_files() {
        let f = TokenFile::parse(
            "# comment\n\nt1,alice,u1,\"team-a,devs\"\nt2,bob,u2\nt3,carol,u3,ops\n",
        )
        .expect("valid file");
        assert_eq!(f.len(), 3);
        let alice = f.user("t1").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "u1");
        assert_eq!(alice.groups, vec!["team-a", "devs", "system:authenticated"]);
        assert_eq!(
            f.user("t2").expect("bob").groups,
            vec!["system:authenticated"]
        );
        assert_eq!(
            f.user("t3").expect("carol").groups,
            vec!["ops", "system:authenticated"]
        );
        assert!(f.user("t4").is_none());
        assert!(f.user("").is_none());
    }

    #[test]
    fn refuses_broken_lines_without_showing_tokens() {
        for (text, why) in [
            ("secret-token,alice\n", "at least"),
            ("secret-token,alice,u1,\"a,b\n", "unterminated"),
            (",alice,u1\n", "must not be empty"),
            ("secret-token,alice,u1\nsecret-token,bob,u2\n", "twice"),
        ] {
            let e = TokenFile::parse(text).expect_err(text).to_string();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("secret-token"), "{e}");
        }
    }
}
