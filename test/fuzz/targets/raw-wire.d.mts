export const dictionary: readonly Buffer[];
