"""A plain, loop-based transcription of the ToMe paper's bipartite soft matching (Algorithm 1 and the
official release's class/distillation-token handling), used as the oracle in tests.

Per sample: tokens at even positions form A, odd positions form B. Rows of protected A tokens and
columns of protected B tokens are excluded. Each A token's best B partner is its edge; the r highest
edges merge (A token averaged into its B partner, unweighted "mean" like scatter_reduce with the
destination included). Returns the merged tokens as a list of rows (order is not part of the contract).
"""

import torch


def reference_merge(metric: torch.Tensor, x: torch.Tensor, r: int, protected: int) -> list[torch.Tensor]:
    """metric: [N, C], x: [N, D] for one sample -> merged rows (N - r tensors of shape [D])."""
    n = metric.shape[0]
    r = min(r, (n - protected) // 2)
    if r <= 0:
        return list(x)
    unit = metric / metric.norm(dim=-1, keepdim=True)
    a_pos = [i for i in range(n) if i % 2 == 0]
    b_pos = [i for i in range(n) if i % 2 == 1]
    edges = []  # (score, a position, b position)
    for i in a_pos:
        if i < protected:
            continue
        candidates = [(float(unit[i] @ unit[j]), j) for j in b_pos if j >= protected]
        best_score, best_j = max(candidates, key=lambda c: c[0])
        edges.append((best_score, i, best_j))
    edges.sort(key=lambda e: -e[0])
    merged_into = {i: j for _, i, j in edges[:r]}
    groups = {j: [j] for j in b_pos}
    for i, j in merged_into.items():
        groups[j].append(i)
    rows = [x[i] for i in a_pos if i not in merged_into]
    rows += [torch.stack([x[k] for k in groups[j]]).mean(0) for j in b_pos]
    return rows
