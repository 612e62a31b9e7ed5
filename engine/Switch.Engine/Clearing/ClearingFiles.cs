namespace Switch.Engine.Clearing;

/// <summary>
/// Where a batch's files live: <c>&lt;data&gt;/clearing/batch-&lt;id&gt;/</c> holds records.bin (the outcomes, appended
/// while the batch was open), one recon-*.csv per bank and institution, and settlement.csv, written last: its presence
/// means the batch's files are complete. Only the names: the engine refuses a data directory holding batches but no
/// journal; the back office (Switch.Clearing) writes and reads the files.
/// </summary>
public static class ClearingFiles
{
    public const string RecordsFile = "records.bin";
    public const string SettlementFile = "settlement.csv";

    public static string BatchDirectory(string dataDirectory, long batchId) =>
        Path.Combine(dataDirectory, "clearing", $"batch-{batchId:D8}");

    /// <summary>A batch directory under <c>&lt;data&gt;/clearing</c>, if there is any (the first by name).</summary>
    public static string? FirstBatchDirectory(string dataDirectory)
    {
        string clearing = Path.Combine(dataDirectory, "clearing");
        return Directory.Exists(clearing) ? Directory.EnumerateDirectories(clearing, "batch-*").Order(StringComparer.Ordinal).FirstOrDefault() : null;
    }

    public static bool IsComplete(string dataDirectory, long batchId) =>
        File.Exists(Path.Combine(BatchDirectory(dataDirectory, batchId), SettlementFile));

    public static string BankFile(int bankCode) => $"recon-bank-{bankCode:D3}.csv";

    /// <summary>Institution codes are printable ASCII; one that is not a safe file name is written in hex.</summary>
    public static string InstitutionFile(string code) =>
        code.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && !code.StartsWith('.')
            ? $"recon-institution-{code}.csv"
            : $"recon-institution-x{Convert.ToHexStringLower(System.Text.Encoding.ASCII.GetBytes(code))}.csv";
}
