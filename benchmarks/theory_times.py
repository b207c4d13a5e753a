"""Times of the theory's slowest everyday answers (the tests check their values, not their
times, since the machines are shared):

    python benchmarks/theory_times.py

* Σ_{t<10¹⁵} 1/(t+1) (Euler–Maclaurin);
* the first call of Σ_{t<10¹⁵} 1/((t+1)·log(t+2)), no cached derivatives;
* Σa, Σa², the first T with Σa ≥ 50 and the A2 verdict of four finite-horizon kinds at 10⁵;
* refusing 10**10**10 as a schedule.
"""

from __future__ import annotations

import os
import time

from benchmarks.cpu import cpu_name
from theory import schedules as S
from theory.schedules import parse_schedule


def _finite_kinds() -> None:
    for text in ["0.1*0.5**floor(t/100)", "0.5*0.1*(1+cos(pi*t/T))", "Max(0.01,0.1*(1-t/T))",
                 "Min(1,(t+1)/100)*0.1/sqrt(t+1)"]:
        schedule = parse_schedule(text, horizon=10**5)
        schedule.partial_sum(10**5, 2), schedule.horizon_for_sum(50.0), schedule.a2()


def _first_call() -> None:
    S._numeric.cache_clear()
    parse_schedule("1/((t+1)*log(t+2))").partial_sum_estimate(10**15)


def _refuse() -> None:
    try:
        parse_schedule("10**10**10")
    except ValueError:
        pass


def main() -> None:
    print(f"# {cpu_name()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for name, job in [("harmonic sum at 1e15", lambda: parse_schedule("1/(t+1)")
                       .partial_sum_estimate(10**15)),
                      ("1/((t+1)log(t+2)) at 1e15, first call", _first_call),
                      ("four finite-horizon kinds at 1e5", _finite_kinds),
                      ("refuse 10**10**10", _refuse)]:
        start = time.perf_counter()
        job()
        print(f"{name:42s} {time.perf_counter() - start:8.3f} s")


if __name__ == "__main__":
    main()
