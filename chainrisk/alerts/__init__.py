"""Alert rules, their evaluation over the latest scores, and delivery by webhook and e-mail."""
