using System.Net;
using System.Net.Sockets;

namespace ActorSim.Tests;

/// <summary>A loopback TCP forwarder to PostgreSQL that the test can cut, as a network failure would.</summary>
public sealed class CuttableProxy : IDisposable
{
    private readonly TcpListener _listener;
    private readonly List<TcpClient> _clients = [];
    private readonly List<(TcpClient Inbound, TcpClient Outbound)> _pairs = [];
    private readonly int _targetPort;
    private readonly CancellationTokenSource _cts = new();

    public CuttableProxy(int targetPort, int listenPort = 0)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, listenPort);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>A new proxy listening on a given port (the database "coming back").</summary>
    public static CuttableProxy OnPort(int listenPort, int targetPort) => new(targetPort, listenPort);

    /// <summary>The proxy's loops run on threads of their own, not the thread pool: while a test blocks
    /// pool threads (a journal opening its store synchronously in its constructor, TestKit waits), pumps
    /// queued on the pool did not run, and a connection through the proxy timed out before it opened
    /// (OutageTests failed 3 runs in 9 with a 2 s connect timeout, the journal never starting).</summary>
    private static void Run(Action loop) => new Thread(() => loop()) { IsBackground = true }.Start();

    private void AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            TcpClient inbound;
            try { inbound = _listener.AcceptTcpClient(); }
            catch (Exception) { return; } // stopped by Cut()
            var outbound = new TcpClient();
            try { outbound.Connect(IPAddress.Loopback, _targetPort); }
            catch (Exception) { inbound.Close(); continue; }
            lock (_clients)
            {
                // Accepted while Cut() ran: close it too, or it would stay open with no pump behind it
                // (a connection the client waits on until its timeouts, not a cut one).
                if (_cts.IsCancellationRequested)
                {
                    inbound.Close();
                    outbound.Close();
                    return;
                }
                _clients.Add(inbound);
                _clients.Add(outbound);
                _pairs.Add((inbound, outbound));
            }
            Stream a = inbound.GetStream(), b = outbound.GetStream();
            Run(() => Pump(a, b));
            Run(() => Pump(b, a));
        }
    }

    private static void Pump(Stream from, Stream to)
    {
        try { from.CopyTo(to); }
        catch (Exception) { /* cut */ }
    }

    /// <summary>A network partition as PostgreSQL sees it: the clients' side of every connection open
    /// now is closed, the database's side is kept open and silent, so its backends live on (until TCP
    /// keepalive would give up) with whatever their sessions hold. New connections are still forwarded.
    /// Returns the database's sides, for <see cref="EndServerSides"/>.</summary>
    public List<TcpClient> CutClientSides()
    {
        lock (_clients)
        {
            foreach (var (inbound, _) in _pairs) inbound.Close();
            var servers = _pairs.Select(p => p.Outbound).ToList();
            _pairs.Clear();
            return servers;
        }
    }

    /// <summary>The partition's end: the database sees those connections close, and its backends end.</summary>
    public static void EndServerSides(IEnumerable<TcpClient> servers)
    {
        foreach (var s in servers) s.Close();
    }

    /// <summary>Closes every connection and stops accepting new ones.</summary>
    public void Cut()
    {
        lock (_clients)
        {
            _cts.Cancel();
            foreach (var c in _clients) c.Close();
        }
        _listener.Stop();
    }

    public void Dispose() => Cut();
}
