"""EHR interoperability: IHE PCD over HL7 v2 (MLLP) and FHIR R4, built on the core's types only.

Nothing here imports the server or the CLI; sockets and files appear only in ``hl7v2.mllp``,
``hl7v2.listener`` and ``hl7v2.outbox``.
"""
