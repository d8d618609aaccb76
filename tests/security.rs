//! Attacks on authentication, replayed: each test sends what an attacker
//! would and checks that it gets exactly what the rules allow, against a real
//! DynamoDB Local.
