"""HL7 v2.x for IHE PCD: our own lenient ER7 model, MLLP framing, PCD-01/03/04/10 and acks."""
