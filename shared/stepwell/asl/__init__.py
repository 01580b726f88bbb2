"""Amazon States Language: Step Functions state machines run on Stepwell."""
