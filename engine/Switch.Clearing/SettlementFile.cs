namespace Switch.Clearing;

/// <summary>One participant's line of the settlement instructions: kind BANK, INSTITUTION or SWITCH.</summary>
public sealed record SettlementLine(string Kind, string Id, long DebitsFen, long CreditsFen, long FeesFen, long Count, long NetFen);

/// <summary>
/// A batch's settlement instructions as read back from settlement.csv (the business record: operators read the
/// file, not a copy in memory). Checked on read: the body hash, every line's net and direction, the trailer.
/// </summary>
public sealed record SettlementFile(long BatchId, long OpenedUs, long ClosedUs, string ClosedBy, long TransactionCount,
    IReadOnlyList<SettlementLine> Lines)
{
    public const string Magic = "SWITCH-SETTLEMENT";
    /// <summary>One line per participant: at most 1,000 banks, 4,000 institutions and the switch, a few hundred KiB.</summary>
    public const long MaxBytes = 4L * 1024 * 1024;

    public long NetSumFen => Lines.Sum(l => l.NetFen);

    public static SettlementFile Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Parse(file);
    }

    public static SettlementFile Parse(Stream stream)
    {
        long batchId = 0, openedUs = 0, closedUs = 0, count = 0;
        string closedBy = "";
        var lines = new List<SettlementLine>();
        long netSumFen = 0, payFen = 0, receiveFen = 0;
        var (t, trailerLine) = ClearingCsv.Read(stream, MaxBytes, h =>
        {
            if (h.Count != 8 || h[1] != Magic || h[2] != "1") throw new ClearingFormatException(1, $"header: H,{Magic},1,batch_id,opened_utc,closed_utc,closed_by,transaction_count");
            batchId = ClearingCsv.ParseLong(h[3], 1, "batch_id");
            openedUs = ClearingCsv.ParseTime(h[4], 1, "opened_utc");
            closedUs = ClearingCsv.ParseTime(h[5], 1, "closed_utc");
            closedBy = h[6];
            count = ClearingCsv.ParseLong(h[7], 1, "transaction_count");
        }, (lineNo, f) =>
        {
            if (f.Count != 10) throw new ClearingFormatException(lineNo, $"a settlement line has 10 fields, got {f.Count}");
            if (f[1] is not ("BANK" or "INSTITUTION" or "SWITCH")) throw new ClearingFormatException(lineNo, $"participant kind: BANK, INSTITUTION or SWITCH, got '{f[1]}'");
            var line = new SettlementLine(f[1], f[2], ClearingCsv.ParseLong(f[3], lineNo, "debits_fen"), ClearingCsv.ParseLong(f[4], lineNo, "credits_fen"),
                ClearingCsv.ParseLong(f[5], lineNo, "fees_fen"), ClearingCsv.ParseLong(f[6], lineNo, "count"), ClearingCsv.ParseLong(f[7], lineNo, "net_fen"));
            if (line.CreditsFen - line.DebitsFen != line.NetFen) throw new ClearingFormatException(lineNo, "net_fen: not credits - debits");
            string direction = line.NetFen < 0 ? "PAY" : line.NetFen > 0 ? "RECEIVE" : "NONE";
            if (f[8] != direction || ClearingCsv.ParseLong(f[9], lineNo, "amount_fen") != Math.Abs(line.NetFen))
            {
                throw new ClearingFormatException(lineNo, $"direction and amount: {direction} {Math.Abs(line.NetFen)} expected");
            }
            netSumFen = checked(netSumFen + line.NetFen);
            if (line.NetFen < 0) payFen = checked(payFen - line.NetFen); else receiveFen = checked(receiveFen + line.NetFen);
            lines.Add(line);
        });
        string[] expected = ["T", ClearingCsv.Long(lines.Count), ClearingCsv.Long(netSumFen), ClearingCsv.Long(payFen), ClearingCsv.Long(receiveFen)];
        if (t.Count != expected.Length + 1 || !t.Take(expected.Length).SequenceEqual(expected))
        {
            throw new ClearingFormatException(trailerLine, $"trailer: {string.Join(',', expected)},sha256 expected");
        }
        if (netSumFen != 0) throw new ClearingFormatException(trailerLine, $"the lines net to {netSumFen} fen, not 0");
        return new SettlementFile(batchId, openedUs, closedUs, closedBy, count, lines);
    }
}
