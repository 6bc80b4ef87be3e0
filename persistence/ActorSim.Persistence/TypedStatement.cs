using System.Collections.Concurrent;
using Npgsql;
using NpgsqlTypes;

namespace ActorSim.Persistence;

/// <summary>A statement with <c>?</c> placeholders and its parameters, each with its PostgreSQL type
/// (so neither Marten nor Npgsql looks a type up from the value): written into Marten's batch by a
/// storage operation, or sent as a command of the journal's own batch.</summary>
internal readonly record struct TypedStatement(string Sql, (object Value, NpgsqlDbType Type)[] Parameters)
{
    /// <summary>Into Marten's batch (<c>IStorageOperation.ConfigureCommand</c>).</summary>
    public void AppendTo(Weasel.Postgresql.ICommandBuilder builder)
    {
        var p = builder.AppendWithParameters(Sql, '?');
        for (var i = 0; i < p.Length; i++)
        {
            p[i].NpgsqlDbType = Parameters[i].Type;
            p[i].Value = Parameters[i].Value;
        }
    }

    /// <summary>As a command of an <see cref="NpgsqlBatch"/>: the placeholders numbered <c>$1</c>, <c>$2</c>, ….</summary>
    public NpgsqlBatchCommand ToBatchCommand()
    {
        var c = new NpgsqlBatchCommand(Numbered.GetOrAdd(Sql, Number));
        foreach (var (value, type) in Parameters) c.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = type, Value = value });
        return c;
    }

    private static readonly ConcurrentDictionary<string, string> Numbered = new(StringComparer.Ordinal);

    /// <summary>Every <c>?</c> becomes <c>$n</c> (the statements here have no other <c>?</c>).</summary>
    internal static string Number(string sql)
    {
        var n = 0;
        return System.Text.RegularExpressions.Regex.Replace(sql, @"\?", _ => "$" + ++n);
    }
}
