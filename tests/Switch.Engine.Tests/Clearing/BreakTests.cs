using System.Security.Cryptography;
using System.Text;
using Switch.Clearing;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Clearing;

/// <summary>Breaks (单边账): a participant's own record of a batch against the switch's, and malformed submissions.</summary>
public sealed class BreakTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The switch's file for bank 102 over a batch of five payments (the third failed).</summary>
    private ReconciliationFile SwitchFile()
    {
        var h = new LogicHarness();
        using var recorder = new ClearingRecorder(_dir.Path, new RecordingLog());
        for (int i = 1; i <= 5; i++) h.PayAndSettle($"P{i}", 1_000 * i, i == 3 ? BankReply.Failed : BankReply.Succeeded);
        h.CloseBatch();
        foreach (OutputEvent o in h.Sink.Outputs) recorder.Record(o);
        Assert.True(recorder.WaitForFiles(1, 10_000), recorder.Fault?.ToString());
        using var stream = File.OpenRead(Path.Combine(ClearingFiles.BatchDirectory(_dir.Path, 1), ClearingFiles.BankFile(102)));
        return ReconciliationFile.Parse(stream);
    }

    /// <summary>A well-formed participant file with these lines (header copied from the switch's file).</summary>
    private static ReconciliationFile Submitted(ReconciliationFile like, IEnumerable<ReconLine> lines)
    {
        string[] header = ReconciliationFile.Header(like.BatchId, like.ParticipantKind, like.ParticipantId, like.OpenedUs, like.ClosedUs);
        var body = new StringBuilder();
        var totals = new ReconTotals();
        foreach (ReconLine line in lines)
        {
            body.Append(ClearingCsv.Join(line.ToFields()));
            totals = totals.Add(line);
        }
        return ReconciliationFile.Parse(new MemoryStream(Encoding.UTF8.GetBytes(Text(header, body.ToString(), totals.ToTrailer()))));
    }

    private static string Text(string[] header, string body, string[] trailerWithoutHash)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body)));
        return ClearingCsv.Join(header) + body + ClearingCsv.Join([.. trailerWithoutHash, hash]);
    }

    [Fact]
    public void Identical_records_have_no_breaks()
    {
        ReconciliationFile ours = SwitchFile();
        BreakReport report = BreakReport.Compare(ours, Submitted(ours, ours.Lines.Reverse()));
        Assert.True(report.Clean);
        Assert.Equal(5, report.Matched);
    }

    [Fact]
    public void Each_kind_of_break_is_found_with_totals()
    {
        ReconciliationFile ours = SwitchFile();
        List<ReconLine> theirs = ours.Lines.ToList();
        ReconLine dropped = theirs[0];
        theirs.RemoveAt(0);                                                     // P1: missing at the participant
        theirs[0] = theirs[0] with { AmountFen = theirs[0].AmountFen + 5 };     // P2: amount mismatch of 5 fen
        theirs[1] = theirs[1] with { Status = "SUCCEEDED" };                    // P3: the switch says failed
        theirs[2] = theirs[2] with { FeeFen = theirs[2].FeeFen + 1 };           // P4: fee differs
        ReconLine extra = theirs[3] with { SwitchId = 999, OrderNo = "GHOST", AmountFen = 777 };
        theirs.Add(extra);                                                      // 999: missing at the switch

        BreakReport report = BreakReport.Compare(ours, Submitted(ours, theirs));
        Assert.Equal(1, report.Matched); // P5
        Assert.Equal(
            [(BreakKind.MissingAtParticipant, "P1"), (BreakKind.AmountMismatch, "P2"), (BreakKind.StatusMismatch, "P3"),
             (BreakKind.AmountMismatch, "P4"), (BreakKind.MissingAtSwitch, "GHOST")],
            report.Breaks.Select(b => (b.Kind, b.OrderNo)));
        Assert.Equal(new BreakTotal(1, dropped.AmountFen), report.Totals[BreakKind.MissingAtParticipant]);
        Assert.Equal(new BreakTotal(1, 777), report.Totals[BreakKind.MissingAtSwitch]);
        Assert.Equal(new BreakTotal(2, 5), report.Totals[BreakKind.AmountMismatch]);
        Assert.Equal(new BreakTotal(1, 0), report.Totals[BreakKind.StatusMismatch]);
        Break status = report.Breaks[2];
        Assert.Equal(("FAILED", "SUCCEEDED"), (status.SwitchStatus, status.ParticipantStatus));
    }

    [Fact]
    public void A_file_about_another_batch_or_participant_is_refused()
    {
        ReconciliationFile ours = SwitchFile();
        ReconciliationFile other = Submitted(ours with { BatchId = 2 }, ours.Lines);
        Assert.Equal(1, Assert.Throws<ClearingFormatException>(() => BreakReport.Compare(ours, other)).Line);
        ReconciliationFile otherBank = Submitted(ours with { ParticipantId = "103" }, ours.Lines);
        Assert.Contains("BANK 103", Assert.Throws<ClearingFormatException>(() => BreakReport.Compare(ours, otherBank)).Message);
    }

    private const string H = "H,SWITCH-RECON,1,1,BANK,102,2025-11-13T02:13:20.000000Z,2025-11-13T03:00:00.000000Z\n";
    private const string D1 = "D,1,ALIPAY,P1,AGREEMENT_PAYMENT,102,1000,1,SUCCEEDED,,2025-11-13T02:13:20.000000Z,2025-11-13T02:13:21.000000Z\n";
    private const string D2 = "D,2,ALIPAY,P2,PAYOUT,102,2000,0,FAILED,\"E,1\",2025-11-13T02:13:20.000000Z,2025-11-13T02:13:21.000000Z\n";

    private static string Hash(string body) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body)));

    public static TheoryData<string, int, string> Malformed() => new()
    {
        { "", 1, "no header" },
        { D1, 1, "data before the header" },
        { H + D1, 2, "no trailer" },
        { H + D1 + $"T,1,1000,1,1,1000,1,{Hash(D1)}\nD,3\n", 4, "after the trailer" },
        { H + D1 + $"T,1,1000,1,1,1000,1,{Hash("x")}\n", 3, "SHA-256" },
        { H + D1 + D2 + $"T,2,3000,1,1,1000,0,{Hash(D1 + D2)}\n", 4, "succeeded_fee_fen" },
        { H + D1 + D2 + $"T,3,3000,1,1,1000,1,{Hash(D1 + D2)}\n", 4, "count" },
        { H + D1 + D1 + $"T,2,2000,2,2,2000,2,{Hash(D1 + D1)}\n", 3, "appears twice" },
        { H.Replace("SWITCH-RECON", "OTHER") + $"T,0,0,0,0,0,0,{Hash("")}\n", 1, "header" },
        { H.Replace("BANK", "SHOP") + $"T,0,0,0,0,0,0,{Hash("")}\n", 1, "participant_kind" },
        { H + "X,1\n", 2, "unknown record type" },
        { H + Bad(D1, ",1000,", ",1O00,") + "T", 2, "amount_fen" },
        { H + Bad(D1, ",1000,", ",-5,") + "T", 2, "amount_fen" },
        { H + Bad(D1, "SUCCEEDED", "OK") + "T", 2, "status" },
        { H + Bad(D1, "AGREEMENT_PAYMENT", "GIFT") + "T", 2, "type" },
        { H + Bad(D1, ",P1,", ",P1,extra,") + "T", 2, "12 fields" },
        { H + Bad(D1, "2025-11-13T02:13:21.000000Z", "yesterday") + "T", 2, "final_utc" },
        { H + Bad(D1, ",P1,", ",\"P1,") + "T", 2, "unterminated" },
        { H + Bad(D1, ",P1,", ",P\"1,") + "T", 2, "stray quote" },
        { H + Bad(D1, ",1,ALIPAY", ",0,ALIPAY") + "T", 2, "switch_id" },
    };

    private static string Bad(string line, string from, string to) => line.Replace(from, to);

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_files_are_rejected_with_the_line_and_the_reason(string text, int line, string reason)
    {
        var e = Assert.Throws<ClearingFormatException>(() => ReconciliationFile.Parse(new MemoryStream(Encoding.UTF8.GetBytes(text))));
        Assert.Equal(line, e.Line);
        Assert.Contains(reason, e.Reason);
    }

    [Fact]
    public void A_well_formed_crafted_file_parses_with_quoted_fields()
    {
        string body = D1 + D2;
        ReconciliationFile file = ReconciliationFile.Parse(new MemoryStream(Encoding.UTF8.GetBytes(H + body + $"T,2,3000,1,1,1000,1,{Hash(body)}\n")));
        Assert.Equal("E,1", file.Lines[1].BankReason);
        Assert.Equal(new ReconTotals(2, 3000, 1, 1, 1000, 1), file.Totals);
    }

    [Fact]
    public void Invalid_utf8_is_rejected_with_its_line()
    {
        byte[] bytes = [.. Encoding.UTF8.GetBytes(H), .. "D,1,"u8, 0xFF, 0xFE, (byte)'\n'];
        Assert.Contains("UTF-8", Assert.Throws<ClearingFormatException>(() => ReconciliationFile.Parse(new MemoryStream(bytes))).Reason);
    }
}
