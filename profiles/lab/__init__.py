"""The lab: experiments on the CPU core, the memory system and threads, with their measuring
and verdicts.

Public: `runner`, `measure`, `experiments`.
"""
