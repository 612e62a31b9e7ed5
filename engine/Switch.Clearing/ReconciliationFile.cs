using System.Text;
using Switch.Engine.Events;

namespace Switch.Clearing;

/// <summary>One transaction line of a reconciliation file (对账文件).</summary>
public sealed record ReconLine(long SwitchId, string Institution, string OrderNo, string Type, string Bank, long AmountFen,
    long FeeFen, string Status, string BankReason, long ReceivedUs, long FinalUs)
{
    public const int Fields = 12;

    public static ReconLine From(in BatchRecord r, string institutionCode) => new(r.TransactionId, institutionCode,
        Encoding.UTF8.GetString(r.OrderNo), ClearingCsv.TypeName(r.Type), r.BankCode.ToString("D3"), r.AmountFen, r.FeeFen,
        ClearingCsv.StatusName(r.Status), Encoding.UTF8.GetString(r.Reason), r.ReceivedUs, r.FinalUs);

    public string[] ToFields() =>
    [
        "D", ClearingCsv.Long(SwitchId), Institution, OrderNo, Type, Bank, ClearingCsv.Long(AmountFen), ClearingCsv.Long(FeeFen),
        Status, BankReason, ClearingCsv.Time(ReceivedUs), ClearingCsv.Time(FinalUs),
    ];

    public static ReconLine Parse(List<string> f, int lineNo)
    {
        if (f.Count != Fields) throw new ClearingFormatException(lineNo, $"a data line has {Fields} fields, got {f.Count}");
        long id = ClearingCsv.ParseLong(f[1], lineNo, "switch_id");
        if (id <= 0) throw new ClearingFormatException(lineNo, $"switch_id: must be > 0, got {id}");
        if (f[3].Length == 0) throw new ClearingFormatException(lineNo, "order_no: empty");
        if (Encoding.UTF8.GetByteCount(f[3]) > ReconEntry.OrderNoMaxBytes) throw new ClearingFormatException(lineNo, $"order_no: at most {ReconEntry.OrderNoMaxBytes} bytes");
        if (f[4] is not ("AGREEMENT_PAYMENT" or "PAYOUT" or "REFUND")) throw new ClearingFormatException(lineNo, $"type: AGREEMENT_PAYMENT, PAYOUT or REFUND, got '{f[4]}'");
        long amountFen = ClearingCsv.ParseLong(f[6], lineNo, "amount_fen");
        if (amountFen <= 0) throw new ClearingFormatException(lineNo, $"amount_fen: must be > 0, got {amountFen}");
        long feeFen = ClearingCsv.ParseLong(f[7], lineNo, "fee_fen");
        if (feeFen < 0) throw new ClearingFormatException(lineNo, $"fee_fen: must be >= 0, got {feeFen}");
        if (f[8] is not ("SUCCEEDED" or "FAILED")) throw new ClearingFormatException(lineNo, $"status: SUCCEEDED or FAILED, got '{f[8]}'");
        return new ReconLine(id, f[2], f[3], f[4], f[5], amountFen, feeFen, f[8], f[9],
            ClearingCsv.ParseTime(f[10], lineNo, "received_utc"), ClearingCsv.ParseTime(f[11], lineNo, "final_utc"));
    }
}

/// <summary>A reconciliation file's totals, as in its trailer.</summary>
public readonly record struct ReconTotals(long Count, long AmountFen, long FeeFen, long SucceededCount, long SucceededAmountFen, long SucceededFeeFen)
{
    public ReconTotals Add(ReconLine line) => Add(line.AmountFen, line.FeeFen, line.Status == "SUCCEEDED");

    public ReconTotals Add(long amountFen, long feeFen, bool succeeded) => new(Count + 1, checked(AmountFen + amountFen),
        checked(FeeFen + feeFen), SucceededCount + (succeeded ? 1 : 0), checked(SucceededAmountFen + (succeeded ? amountFen : 0)),
        checked(SucceededFeeFen + (succeeded ? feeFen : 0)));

    public string[] ToTrailer() =>
    [
        "T", ClearingCsv.Long(Count), ClearingCsv.Long(AmountFen), ClearingCsv.Long(FeeFen), ClearingCsv.Long(SucceededCount),
        ClearingCsv.Long(SucceededAmountFen), ClearingCsv.Long(SucceededFeeFen),
    ];
}

/// <summary>A reconciliation file's header: which batch and participant it is about.</summary>
public sealed record ReconHeader(long BatchId, string ParticipantKind, string ParticipantId, long OpenedUs, long ClosedUs);

/// <summary>
/// A participant's reconciliation file for one batch: <c>H,SWITCH-RECON,1,batch_id,participant_kind,participant_id,
/// opened_utc,closed_utc</c>, one D line per transaction, and a trailer with the totals and the body's SHA-256.
/// </summary>
public sealed record ReconciliationFile(long BatchId, string ParticipantKind, string ParticipantId, long OpenedUs, long ClosedUs,
    IReadOnlyList<ReconLine> Lines, ReconTotals Totals)
{
    public const string Magic = "SWITCH-RECON";
    public const string Version = "1";
    /// <summary>Parsing reads a submitted file whole into memory: bounded. (Large files take the streaming path.)</summary>
    public const long MaxParseBytes = 512L * 1024 * 1024;

    public ReconHeader Identity => new(BatchId, ParticipantKind, ParticipantId, OpenedUs, ClosedUs);

    public static string[] Header(long batchId, string participantKind, string participantId, long openedUs, long closedUs) =>
        ["H", Magic, Version, ClearingCsv.Long(batchId), participantKind, participantId, ClearingCsv.Time(openedUs), ClearingCsv.Time(closedUs)];

    /// <summary>Parses and checks a file into memory: every field, the trailer's totals and body hash, duplicate switch ids.</summary>
    public static ReconciliationFile Parse(Stream stream)
    {
        var lines = new List<ReconLine>();
        var ids = new HashSet<long>();
        (ReconHeader h, ReconTotals totals) = Read(stream, MaxParseBytes, (lineNo, line) =>
        {
            if (!ids.Add(line.SwitchId)) throw new ClearingFormatException(lineNo, $"switch_id {line.SwitchId} appears twice");
            lines.Add(line);
        });
        return new ReconciliationFile(h.BatchId, h.ParticipantKind, h.ParticipantId, h.OpenedUs, h.ClosedUs, lines, totals);
    }

    /// <summary>Reads a file line by line, handing each checked data line on: every field, the trailer's totals and
    /// the body hash are checked; holds nothing per line (duplicates are the caller's to find).</summary>
    public static (ReconHeader Header, ReconTotals Totals) Read(Stream stream, long maxBytes, Action<int, ReconLine> onLine)
    {
        ReconHeader? header = null;
        var totals = new ReconTotals();
        var (t, trailerLine) = ClearingCsv.Read(stream, maxBytes, h =>
        {
            if (h.Count != 8 || h[1] != Magic || h[2] != Version) throw new ClearingFormatException(1, $"header: H,{Magic},{Version},batch_id,participant_kind,participant_id,opened_utc,closed_utc");
            long batchId = ClearingCsv.ParseLong(h[3], 1, "batch_id");
            if (h[4] is not ("BANK" or "INSTITUTION")) throw new ClearingFormatException(1, $"participant_kind: BANK or INSTITUTION, got '{h[4]}'");
            header = new ReconHeader(batchId, h[4], h[5], ClearingCsv.ParseTime(h[6], 1, "opened_utc"), ClearingCsv.ParseTime(h[7], 1, "closed_utc"));
        }, (lineNo, fields) =>
        {
            ReconLine line = ReconLine.Parse(fields, lineNo);
            totals = totals.Add(line);
            onLine(lineNo, line);
        });
        string[] expected = totals.ToTrailer();
        if (t.Count != expected.Length + 1) throw new ClearingFormatException(trailerLine, $"trailer: {expected.Length + 1} fields (T, count, amount, fee, succeeded count, succeeded amount, succeeded fee, sha256), got {t.Count}");
        string[] names = ["", "count", "amount_total_fen", "fee_total_fen", "succeeded_count", "succeeded_amount_fen", "succeeded_fee_fen"];
        for (int i = 1; i < expected.Length; i++)
        {
            if (t[i] != expected[i]) throw new ClearingFormatException(trailerLine, $"trailer {names[i]} is {t[i]}, the lines add up to {expected[i]}");
        }
        return (header!, totals);
    }
}
