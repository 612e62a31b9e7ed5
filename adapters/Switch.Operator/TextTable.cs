using System.Text;

namespace Switch.Operator;

/// <summary>Columns padded to their widest cell; numbers are left as they are (the reader scans rows, not sums).</summary>
public sealed class TextTable(params string[] headers)
{
    private const int MaxRows = 100_000;
    private readonly List<string[]> _rows = [headers];

    public void Row(params string[] cells)
    {
        if (cells.Length != headers.Length) throw new ArgumentException($"{cells.Length} cells for {headers.Length} columns");
        if (_rows.Count > MaxRows) throw new InvalidOperationException("table too long");
        _rows.Add(cells);
    }

    public void Write(TextWriter w)
    {
        var widths = new int[headers.Length];
        foreach (string[] row in _rows)
            for (int i = 0; i < row.Length; i++) widths[i] = Math.Max(widths[i], row[i].Length);
        var sb = new StringBuilder();
        foreach (string[] row in _rows)
        {
            sb.Clear();
            for (int i = 0; i < row.Length; i++)
            {
                if (i > 0) sb.Append("  ");
                sb.Append(i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i]));
            }
            w.WriteLine(sb.ToString().TrimEnd());
        }
    }
}
