using System.Buffers.Binary;
using Switch.Engine.Clearing;
using Switch.Engine.Events;
using Switch.Journal;

namespace Switch.Clearing;

/// <summary>
/// How a batch's files are made (where they live: <see cref="ClearingFiles"/>): every reconciliation file, then the
/// settlement instructions. Everything is a pure function of the closed batch and its records, so generating again
/// gives identical bytes.
/// </summary>
public static class BatchFileGenerator
{
    /// <summary>Reconciliation files written in one pass over the records (bounded open files).</summary>
    public const int MaxOpenFiles = 256;

    /// <summary>Writes every reconciliation file, then the settlement instructions. Throws if the records do not
    /// match the batch (count, batch id, a torn file): a wrong file is worse than a late one.</summary>
    public static void Generate(string dataDirectory, ClosedBatch batch)
    {
        string dir = ClearingFiles.BatchDirectory(dataDirectory, batch.BatchId);
        DirectorySync.CreateDirectory(dir); // the files it gets are durable; so must be its entry in clearing/
        string records = Path.Combine(dir, ClearingFiles.RecordsFile);
        long recordBytes = File.Exists(records) ? new FileInfo(records).Length : 0;
        if (recordBytes % BatchRecord.Bytes != 0 || recordBytes / BatchRecord.Bytes != batch.TransactionCount)
        {
            throw new InvalidDataException($"clearing: batch {batch.BatchId} has {batch.TransactionCount} transactions, {records} holds {recordBytes} bytes");
        }

        // Participants as the batch lists them: banks in configuration order, then institutions by index.
        var files = new List<(string Kind, string Id, string File, bool IsBank, int Key)>();
        var institutionCodes = new List<byte[]>();
        foreach (ParticipantPosition p in batch.Positions)
        {
            if (p.Kind == ParticipantKind.Bank)
            {
                int code = int.Parse(p.Id, System.Globalization.CultureInfo.InvariantCulture);
                files.Add(("BANK", p.Id, ClearingFiles.BankFile(code), true, code));
            }
            else if (p.Kind == ParticipantKind.Institution)
            {
                files.Add(("INSTITUTION", p.Id, ClearingFiles.InstitutionFile(p.Id), false, institutionCodes.Count));
                institutionCodes.Add(System.Text.Encoding.ASCII.GetBytes(p.Id));
            }
        }
        byte[] line = new byte[ReconLineFormatter.MaxLineBytes];
        for (int first = 0; first < files.Count; first += MaxOpenFiles)
        {
            var group = files.Skip(first).Take(MaxOpenFiles).ToArray();
            var writers = new AtomicCsvWriter[group.Length];
            var totals = new ReconTotals[group.Length];
            try
            {
                for (int g = 0; g < group.Length; g++)
                {
                    writers[g] = new AtomicCsvWriter(Path.Combine(dir, group[g].File),
                        ReconciliationFile.Header(batch.BatchId, group[g].Kind, group[g].Id, batch.OpenedUs, batch.ClosedUs));
                }
                ForEachRecord(records, batch.BatchId, record =>
                {
                    int bankCode = BinaryPrimitives.ReadUInt16LittleEndian(record[50..]);
                    int institution = BinaryPrimitives.ReadUInt16LittleEndian(record[48..]);
                    if (institution >= institutionCodes.Count) throw new InvalidDataException($"clearing: a record of batch {batch.BatchId} names institution {institution}");
                    long amountFen = BinaryPrimitives.ReadInt64LittleEndian(record[16..]);
                    long feeFen = BinaryPrimitives.ReadInt64LittleEndian(record[24..]);
                    bool succeeded = record[53] == (byte)TransactionStatus.Succeeded;
                    int length = -1;
                    for (int g = 0; g < group.Length; g++)
                    {
                        if (group[g].Key != (group[g].IsBank ? bankCode : institution)) continue;
                        if (length < 0) length = ReconLineFormatter.Format(record, institutionCodes[institution], line);
                        writers[g].Data(line.AsSpan(0, length));
                        totals[g] = totals[g].Add(amountFen, feeFen, succeeded);
                    }
                });
                for (int g = 0; g < group.Length; g++)
                {
                    writers[g].Complete(totals[g].ToTrailer());
                }
            }
            finally
            {
                foreach (AtomicCsvWriter? w in writers) w?.Dispose();
            }
        }
        WriteSettlement(Path.Combine(dir, ClearingFiles.SettlementFile), batch);
    }

    /// <summary>Hands each raw record of a batch file to <paramref name="onRecord"/>, in the order they became final,
    /// reading 512 records at a time; a torn tail or a record of another batch is an error.</summary>
    public static void ForEachRecord(string path, long batchId, RecordAction onRecord)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        byte[] buffer = new byte[BatchRecord.Bytes * 512];
        while (true)
        {
            int read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            if (read % BatchRecord.Bytes != 0) throw new InvalidDataException($"clearing: {path} ends in a torn record");
            for (int at = 0; at < read; at += BatchRecord.Bytes)
            {
                ReadOnlySpan<byte> record = buffer.AsSpan(at, BatchRecord.Bytes);
                long recordBatch = BinaryPrimitives.ReadInt64LittleEndian(record[8..]);
                if (recordBatch != batchId) throw new InvalidDataException($"clearing: {path} holds a record of batch {recordBatch}");
                onRecord(record);
            }
            if (read < buffer.Length) return;
        }
    }

    public delegate void RecordAction(ReadOnlySpan<byte> record);

    /// <summary>The records of a batch file as values (tests, tools).</summary>
    public static List<BatchRecord> ReadRecords(string path, long batchId)
    {
        var list = new List<BatchRecord>();
        ForEachRecord(path, batchId, r => list.Add(BatchRecord.Read(r)));
        return list;
    }

    /// <summary>
    /// Settlement instructions: <c>H,SWITCH-SETTLEMENT,1,batch_id,opened_utc,closed_utc,closed_by,transaction_count</c>; per
    /// participant <c>D,kind,id,debits_fen,credits_fen,fees_fen,count,net_fen,direction,amount_fen</c> (direction PAY when the
    /// participant owes, RECEIVE when owed, NONE at zero; amount = |net|); trailer <c>T,participants,net_sum_fen (0),
    /// pay_total_fen,receive_total_fen,sha256</c>.
    /// </summary>
    private static void WriteSettlement(string path, ClosedBatch batch)
    {
        using var writer = new AtomicCsvWriter(path,
        [
            "H", "SWITCH-SETTLEMENT", "1", ClearingCsv.Long(batch.BatchId), ClearingCsv.Time(batch.OpenedUs),
            ClearingCsv.Time(batch.ClosedUs), batch.ClosedBy, ClearingCsv.Long(batch.TransactionCount),
        ]);
        long netSumFen = 0, payFen = 0, receiveFen = 0;
        foreach (ParticipantPosition p in batch.Positions)
        {
            string kind = p.Kind switch
            {
                ParticipantKind.Bank => "BANK",
                ParticipantKind.Institution => "INSTITUTION",
                ParticipantKind.SwitchFee => "SWITCH",
                _ => throw new InvalidOperationException($"settlement: participant kind {p.Kind}"),
            };
            string direction = p.NetFen < 0 ? "PAY" : p.NetFen > 0 ? "RECEIVE" : "NONE";
            writer.Data(["D", kind, p.Id, ClearingCsv.Long(p.DebitsFen), ClearingCsv.Long(p.CreditsFen), ClearingCsv.Long(p.FeesFen),
                ClearingCsv.Long(p.Count), ClearingCsv.Long(p.NetFen), direction, ClearingCsv.Long(Math.Abs(p.NetFen))]);
            netSumFen = checked(netSumFen + p.NetFen);
            if (p.NetFen < 0) payFen = checked(payFen - p.NetFen); else receiveFen = checked(receiveFen + p.NetFen);
        }
        if (netSumFen != 0 || payFen != receiveFen) throw new InvalidOperationException($"settlement: batch {batch.BatchId} nets to {netSumFen} fen");
        writer.Complete(["T", ClearingCsv.Long(batch.Positions.Count), ClearingCsv.Long(netSumFen), ClearingCsv.Long(payFen), ClearingCsv.Long(receiveFen)]);
    }
}
