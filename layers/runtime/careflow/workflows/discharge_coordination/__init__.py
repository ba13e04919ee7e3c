"""Discharge coordination: from the pending discharge (A16) to the patient's departure (A03),
the discharge's dependencies (transport, meds to beds, durable medical equipment, post-acute
authorization) arranged in parallel, each delay recorded with its cause, its owner and its
minutes, and a case manager asked when the expected discharge time is threatened."""
