using Switch.Engine.Events;

namespace Switch.Engine.Business;

/// <summary>The limits on request fields and how a bank reference is normalised. One place, used by config and logic.</summary>
public static class FieldRules
{
    public const int InstitutionMaxBytes = 16;
    public const int OrderNoMaxBytes = 32;
    public const int AccountMaxBytes = 32;
    public const int EchoMaxBytes = 64;
    public const int ReasonMaxBytes = 32;
    public const int BankCodeDigits = 3;
    public const int CnapsDigits = 12;

    /// <summary>Codes and order numbers: printable ASCII without spaces, so they are safe in files and logs.</summary>
    public static bool IsCode(ReadOnlySpan<byte> value, int maxBytes)
    {
        if (value.Length == 0 || value.Length > maxBytes)
        {
            return false;
        }
        foreach (byte b in value)
        {
            if (b is < 0x21 or > 0x7E)
            {
                return false;
            }
        }
        return true;
    }

    public static bool IsCode(string? value, int maxBytes) =>
        value is { Length: > 0 } && value.Length <= maxBytes && value.All(c => c is >= '!' and <= '~');

    /// <summary>Echo may be any UTF-8 but no control characters (it lands in reconciliation files).</summary>
    public static bool IsEchoText(ReadOnlySpan<byte> value)
    {
        foreach (byte b in value)
        {
            if (b < 0x20 || b == 0x7F)
            {
                return false;
            }
        }
        return System.Text.Unicode.Utf8.IsValid(value);
    }

    /// <summary>
    /// A bank is named by its 3-digit code or by a 12-digit CNAPS branch code whose first 3 digits are the
    /// bank code (行名行号不统一: channels differ, so accept both). Returns the bank code, or -1 if malformed.
    /// </summary>
    public static int NormaliseBankCode(ReadOnlySpan<byte> bankRef)
    {
        if (bankRef.Length != BankCodeDigits && bankRef.Length != CnapsDigits)
        {
            return -1;
        }
        foreach (byte b in bankRef)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return -1;
            }
        }
        return (bankRef[0] - '0') * 100 + (bankRef[1] - '0') * 10 + (bankRef[2] - '0');
    }

    public static ReadOnlySpan<byte> Cny => "CNY"u8;
}
