// node-nvidia-smi 1.0.0 ships no types: it runs `nvidia-smi -q -x` and hands over the XML as xml2js parsed it.
declare module 'node-nvidia-smi' {
  function nvidiaSmi(callback: (error: unknown, data?: unknown) => void): void;
  export = nvidiaSmi;
}
