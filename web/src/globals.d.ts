declare const __TRIDENT_VERSION__: string;
declare const __ORT_VERSION__: string;
