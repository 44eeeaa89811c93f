"""bench.mix: every pair of a few styles is mixed, scored against both parents and counted on the last line."""
import json

from bench import mix


def test_mix_bench_scores_every_pair_and_counts_them(shared_data, tmp_path, capsys):
    out = tmp_path / "mix.json"
    assert mix.main(["--styles", "the-scream,water-lilies,great-wave", "--photos", "1", "--side", "128",
                     "--json", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(out.read_text())
    assert set(result["pairs"]) == {"the-scream+water-lilies", "the-scream+great-wave", "water-lilies+great-wave"}
    good = sum(r["between"] and r["kept"] for r in result["pairs"].values())
    assert last.startswith(f"{good}/3 pairs paint between their parents")
    for name, row in result["pairs"].items():
        a, b = name.split("+")
        between = (row["mix"][f"texture:{a}"] < result["pure"][b][f"texture:{a}"]
                   and row["mix"][f"texture:{b}"] < result["pure"][a][f"texture:{b}"])
        assert row["between"] == between
    assert mix.main(["--styles", "the-scream"]) == 2
