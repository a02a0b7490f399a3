// xml2js 0.4 ships no types (@types/xml2js is not installed): the one function the GPU inventory uses.
declare module 'xml2js' {
  export function parseString(
    xml: string,
    options: { explicitArray?: boolean; trim?: boolean },
    callback: (error: Error | null, result?: unknown) => void,
  ): void;
}
