"""The web UI's routes: sign-in (`auth`), coordinators (`panel`), DPOs (`dpo`)."""
