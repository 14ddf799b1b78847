"""The MnasNet controller (Tan et al., CVPR 2019, Section 4.2) as an Optuna sampler.

A recurrent policy emits the space's categorical choices one after another (each step sees the previous
choice), and is trained with policy gradient on the reward of finished trials. MnasNet used PPO; this is
REINFORCE with an exponential-moving-average baseline and an entropy bonus, which needs no stored
sampling probabilities: the log-probability of any finished trial's choices is recomputed under the
current policy. That makes the controller a pure function of (seed, study history): a resumed process or
an extra worker replays the finished trials in order and arrives at the same policy.

Candidates rejected before training (a broken hard constraint) have no reward; they are replayed with the
lowest reward seen so far, so the controller learns to avoid them.
"""

from __future__ import annotations

from typing import Any

import torch
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from nas.search.strategies import Strategy, distributions, fitness
from nas.space import SearchSpace


class Controller(nn.Module):
    """LSTM over the choice sequence; one softmax head per parameter."""

    def __init__(self, sizes: list[int], hidden: int = 64) -> None:
        super().__init__()
        self.sizes = sizes
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.ModuleList(nn.Embedding(n, hidden) for n in sizes)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)

    def forward(
        self, choices: list[int] | None = None, generator: torch.Generator | None = None
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Sample a sequence (``choices`` None) or score a given one: indices, log-prob, entropy."""
        x, state = self.start, None
        picked, log_prob, entropy = [], torch.zeros(()), torch.zeros(())
        for i, head in enumerate(self.heads):
            h, c = self.cell(x, state)
            state = (h, c)
            logits = head(h)[0]
            probs = torch.softmax(logits, -1)
            index = int(torch.multinomial(probs, 1, generator=generator)) if choices is None else choices[i]
            log_probs = torch.log_softmax(logits, -1)
            log_prob = log_prob + log_probs[index]
            entropy = entropy - (probs * log_probs).sum()
            picked.append(index)
            x = self.embed[i](torch.tensor([index]))
        return picked, log_prob, entropy


class MnasNetRLSampler(BaseSampler):
    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        learning_rate: float = 0.003,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
    ) -> None:
        self._space = space
        self._params = list(space.params)
        self._seed = seed
        self._baseline_decay = baseline_decay
        self._entropy_weight = entropy_weight
        torch.manual_seed(seed)
        self._policy = Controller([len(p.choices) for p in self._params])
        self._optimizer = torch.optim.Adam(self._policy.parameters(), lr=learning_rate)
        self._baseline: float | None = None
        self._lowest: float | None = None
        self._seen: set[int] = set()
        self._random = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(distributions(self._space))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._learn(study)
        generator = torch.Generator().manual_seed(self._seed * 1_000_003 + trial.number)
        with torch.no_grad():
            picked, _, _ = self._policy(generator=generator)
        return {p.name: p.choices[i] for p, i in zip(self._params, picked, strict=True)}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _learn(self, study: Study) -> None:
        """One policy-gradient step per finished trial not yet learned from, in trial order."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        for t in sorted(finished, key=lambda t: t.number):
            if t.number in self._seen or not self._has_choices(t):
                continue
            self._seen.add(t.number)
            value = fitness(t)
            if value is None:
                if "rejected" not in t.user_attrs:
                    continue  # pruned while training: no reward to learn from
                value = self._lowest if self._lowest is not None else 0.0
            self._lowest = value if self._lowest is None else min(self._lowest, value)
            self._step(t, value)

    def _has_choices(self, trial: FrozenTrial) -> bool:
        return all(p.name in trial.params and trial.params[p.name] in p.choices for p in self._params)

    def _step(self, trial: FrozenTrial, value: float) -> None:
        if self._baseline is None:
            self._baseline = value
        advantage = value - self._baseline
        self._baseline = self._baseline_decay * self._baseline + (1 - self._baseline_decay) * value
        indices = [p.choices.index(trial.params[p.name]) for p in self._params]
        _, log_prob, entropy = self._policy(indices)
        loss = -advantage * log_prob - self._entropy_weight * entropy
        self._optimizer.zero_grad()
        loss.backward()
        self._optimizer.step()


STRATEGY = Strategy(
    make=lambda config, space, seed, policy_seed: MnasNetRLSampler(space, policy_seed, config.learning_rate),
    ranks_by_reward=True,
)
