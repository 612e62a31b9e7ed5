using Switch.Clearing;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Clearing;

/// <summary>The bounded-memory comparison (external sort in runs, then a merge join) against the in-memory one.</summary>
public sealed class StreamingBreakTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_shuffled_200k_line_file_sorted_in_spilled_runs_gives_the_same_report_as_the_in_memory_comparison()
    {
        var random = new Random(20251122);
        const int lines = 200_000;
        const long batchId = 7;
        long openedUs = 1_763_000_000_000_000;
        // The switch's lines in the order they became final (not id order); ids with gaps.
        var ours = new List<ReconLine>(lines);
        long id = 1_000;
        for (int i = 0; i < lines; i++)
        {
            id += 1 + random.Next(3);
            long received = openedUs + i * 1_000L;
            ours.Add(new ReconLine(id, i % 3 == 0 ? "TENPAY" : "ALIPAY", $"ORD-{i:D7}", i % 5 == 0 ? "PAYOUT" : "AGREEMENT_PAYMENT", "102",
                1 + random.Next(1_000_000), random.Next(100), random.Next(10) == 0 ? "FAILED" : "SUCCEEDED", "", received, received + random.Next(5_000_000)));
        }
        Shuffle(ours, random);

        // The bank's: shuffled, about 3% missing, 1% extra, 1% amount and 1% status differences (more than the 10,000 listed).
        var theirs = new List<ReconLine>(lines);
        foreach (ReconLine l in ours)
        {
            int roll = random.Next(100);
            if (roll < 3) continue;
            theirs.Add(roll == 3 ? l with { AmountFen = l.AmountFen + 1 + random.Next(500) }
                : roll == 4 ? l with { Status = l.Status == "SUCCEEDED" ? "FAILED" : "SUCCEEDED" }
                : l);
            if (roll == 5) theirs.Add(l with { SwitchId = l.SwitchId + 5_000_000, OrderNo = "BANK-" + l.OrderNo });
        }
        Shuffle(theirs, random);
        string ourPath = Write("ours.csv", batchId, ours, openedUs);
        string theirPath = Write("theirs.csv", batchId, theirs, openedUs);

        BreakReport inMemory = BreakReport.Compare(Parse(ourPath), Parse(theirPath));

        string spill = Path.Combine(_dir.Path, "spill");
        BreakReport streamed;
        using (SortedReconFile a = Sorted(ourPath, spill), b = Sorted(theirPath, spill))
        {
            Assert.True(a.SpilledRuns >= 10 && b.SpilledRuns >= 10); // the merge path, not one run in memory
            streamed = BreakReport.Compare(a, b);
        }
        Assert.Empty(Directory.EnumerateFiles(spill)); // runs removed

        Assert.True(inMemory.BreaksTruncated);
        Assert.Equal(BreakReport.MaxListedBreaks, inMemory.Breaks.Count);
        Assert.True(inMemory.Totals.Values.All(t => t.Count > 1_000));
        Assert.Equal((inMemory.BatchId, inMemory.ParticipantKind, inMemory.ParticipantId), (streamed.BatchId, streamed.ParticipantKind, streamed.ParticipantId));
        Assert.Equal((inMemory.SwitchLines, inMemory.ParticipantLines, inMemory.Matched, inMemory.BreaksTruncated),
            (streamed.SwitchLines, streamed.ParticipantLines, streamed.Matched, streamed.BreaksTruncated));
        Assert.Equal(inMemory.Totals.OrderBy(t => t.Key), streamed.Totals.OrderBy(t => t.Key));
        Assert.Equal(inMemory.Breaks, streamed.Breaks);
        // Every line is accounted for: matched, or in exactly one break on each side it is on.
        long total = inMemory.Totals.Values.Sum(t => t.Count);
        Assert.Equal(lines, inMemory.Matched + total - inMemory.Totals[BreakKind.MissingAtSwitch].Count);
    }

    [Fact]
    public void A_repeated_switch_id_is_refused_naming_both_lines_even_across_runs()
    {
        var lines = Enumerable.Range(1, 50).Select(i => new ReconLine(i, "ALIPAY", $"O{i}", "PAYOUT", "102", 100 + i, 1, "SUCCEEDED", "", 0, 1)).ToList();
        lines.Add(lines[3] with { OrderNo = "AGAIN" }); // line 52 repeats the id of line 5
        string path = Write("dup.csv", 1, lines, 0);
        using SortedReconFile ours = Sorted(Write("ours.csv", 1, lines.Take(50).ToList(), 0), _dir.Path);
        using SortedReconFile theirs = Sorted(path, _dir.Path);
        ClearingFormatException e = Assert.Throws<ClearingFormatException>(() => BreakReport.Compare(ours, theirs));
        Assert.Equal(52, e.Line);
        Assert.Contains("switch_id 4 appears twice (also line 5)", e.Message);
    }

    [Fact]
    public void A_malformed_line_is_refused_while_streaming_with_its_number_and_no_run_left_behind()
    {
        var lines = Enumerable.Range(1, 40).Select(i => new ReconLine(i, "ALIPAY", $"O{i}", "PAYOUT", "102", 100 + i, 1, "SUCCEEDED", "", 0, 1)).ToList();
        string text = File.ReadAllText(Write("bad.csv", 1, lines, 0)).Replace("D,30,ALIPAY,O30,PAYOUT,", "D,30,ALIPAY,O30,WIRE,");
        string spill = Path.Combine(_dir.Path, "bad-spill");
        ClearingFormatException e = Assert.Throws<ClearingFormatException>(() =>
            SortedReconFile.Read(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)), 1 << 20, spill, runEntries: 8));
        Assert.Equal(31, e.Line);
        Assert.Contains("type:", e.Message);
        Assert.Empty(Directory.Exists(spill) ? Directory.EnumerateFiles(spill) : []);
    }

    private SortedReconFile Sorted(string path, string spill)
    {
        using var stream = File.OpenRead(path);
        return SortedReconFile.Read(stream, long.MaxValue, spill, runEntries: 16_384);
    }

    private static ReconciliationFile Parse(string path)
    {
        using var stream = File.OpenRead(path);
        return ReconciliationFile.Parse(stream);
    }

    private string Write(string name, long batchId, List<ReconLine> lines, long openedUs)
    {
        string path = Path.Combine(_dir.Path, name);
        var totals = new ReconTotals();
        using var writer = new AtomicCsvWriter(path, ReconciliationFile.Header(batchId, "BANK", "102", openedUs, openedUs + 1));
        foreach (ReconLine l in lines)
        {
            writer.Data(l.ToFields());
            totals = totals.Add(l);
        }
        writer.Complete(totals.ToTrailer());
        return path;
    }

    private static void Shuffle<T>(List<T> list, Random random)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
